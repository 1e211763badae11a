"""Skipping an `up` that cannot change anything: the rule both engines share.

An `up` is skipped when its fingerprint equals the one recorded by the stack's last successful
`up`. The fingerprint is a keyed hash (HMAC-SHA256: the config holds secrets, so no plain hash
of it is stored) of the rendered stack config, exactly what the program is fed, and of the
program's version: the source of `stacks/` and of what its resources run (`dnspublish/`, the
sandbox's simulated cloud) and the versions of the Pulumi SDK and provider packages. The
engine adds what else decides a run's outcome (the live engine: its backend and plugin pins).

What keeps an `up` from being skipped:
- any other kind of run since (a `refresh` or `destroy` forgets the fingerprint: a refresh is
  how drift is looked for, and the next `up` then runs), or a run that did not succeed (the
  fingerprint is forgotten before every `up` runs and recorded only when it succeeded);
- a run that left something to retry: a DNS record whose outcome was not settled (`published`
  or `manual`; the next run tries it again) or, in the sandbox, a record it could not remove;
  such a run records no fingerprint (`settled`).

A skipped `up` reports no changes, `skipped: true` in its summary and one log line saying so,
and the outputs of the run that recorded the fingerprint, so the results pipeline finds what it
always finds. A preview is never skipped."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from automation.engine import EventCallback, StackResult, summarize
from stacks.config import FleetConfig
from stacks.dns import SETTLED

ROOT = Path(__file__).resolve().parent.parent
# What a run's outcome depends on besides its config: the program, what its resources run.
PROGRAM_SOURCES = ("stacks", "dnspublish", "automation/sandbox")
PROGRAM_PACKAGES = ("pulumi", "pulumi_hcloud", "pulumi_command")


@dataclass(frozen=True)
class LastUp:
    """What a skipped `up` reports: the outputs of the run that recorded the fingerprint, and
    how many resources the stack has."""

    outputs: dict[str, Any]
    resources: int


@lru_cache(maxsize=1)
def program_version() -> str:
    """The program's version, read once per process (a deployment changes it by restarting)."""
    return digest_of(ROOT, PROGRAM_SOURCES, PROGRAM_PACKAGES)


def digest_of(root: Path, sources: tuple[str, ...], packages: tuple[str, ...]) -> str:
    """A digest of the source files under `root`/`sources` and the packages' versions."""
    digest = hashlib.sha256()
    for source in sources:
        for path in sorted((root / source).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for package in packages:
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{package}=={version}\0".encode())
    return digest.hexdigest()


def fingerprint(config: FleetConfig, key: bytes, program: str, extra: str = "") -> str:
    rendered = {k: [v.value, v.secret] for k, v in config.to_stack_config().items()}
    text = json.dumps(
        {"config": rendered, "program": program, "extra": extra},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def settled(outputs: dict[str, Any]) -> bool:
    """Whether the run left no DNS record to try again (see the module's docstring)."""
    records = outputs.get("dns") or {}
    return all(not isinstance(r, dict) or r.get("status") in SETTLED for r in records.values())


def skipped(
    verb: str, outputs: dict[str, Any], resources: int, on_event: EventCallback | None
) -> StackResult:
    summary: dict[str, int] = {**summarize([], resources), "skipped": True}
    line = (
        f"{verb}: skipped: the stack config and program are unchanged since the last successful "
        f"up ({resources} resources); a refresh looks for drift, a changed config runs"
    )
    if on_event is not None:
        on_event(line)
    return StackResult(summary=summary, outputs=outputs, log=[line])
