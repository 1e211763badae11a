"""Pulumi entry point (`main: stacks/` in Pulumi.yaml): read the stack config, declare the fleet."""

import sys
from pathlib import Path

# Pulumi runs this directory as a script; make the project root importable when the package is
# not installed into the virtualenv.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from stacks.config import FleetConfig  # noqa: E402
from stacks.program import fleet  # noqa: E402

fleet(FleetConfig.from_pulumi())
