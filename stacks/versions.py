"""Stalwart releases a server may be pinned to, and which management generation each speaks.

The list is the upstream tags of stalwartlabs/stalwart (read in the provisioning review,
/work/shared/reference/provisioning-review.md "Sources used" and S7): v0.12.0-5, v0.13.0-4,
v0.14.0-1, v0.15.0-5 and v0.16.0-v0.16.18 (2026-08-17, the newest tag). A pin to a tag that does
not exist would pass a pattern check and then fail at download (`curl -f`, 404), so pins are checked
against this list; releases published after it are accepted through `stalwartReleases` (stack
config) / `PENGUINMAILS_STALWART_RELEASES` (settings) without a code change.

Generations:
- `rest` (v0.12-v0.15): `/opt/stalwart`, `--init`, REST management under `/api`.
- `jmap` (v0.16+): `/usr/local/bin/stalwart` + `/etc/stalwart`, no `--init`, management over JMAP
  at `/jmap/` with `urn:stalwart:jmap` (UPGRADING/v0_16.md; boot.rs; http/src/api/mod.rs).
Moving a server from `rest` to `jmap` is an offline migration (UPGRADING/v0_16.md:
`migrate_v016.py dump/convert`, a backup, a recovery-mode start that wipes the directory and
settings, `stalwart-cli apply`), never a pin change: `pin_change_problem` says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_VERSION = "v0.16.18"

_SERIES = {"v0.12": 5, "v0.13": 4, "v0.14": 1, "v0.15": 5, "v0.16": 18}
RELEASES: tuple[str, ...] = tuple(
    f"{series}.{patch}" for series, last in _SERIES.items() for patch in range(last + 1)
)
_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
OLDEST = (0, 12)


def parse(version: str) -> tuple[int, int, int] | None:
    match = _TAG.match(version)
    if match is None:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def generation(version: str) -> str:
    """`rest` for v0.12-v0.15, `jmap` for v0.16 and later (including v1.x)."""
    parsed = parse(version)
    if parsed is None:
        raise ValueError(f"not a release tag: {version!r}")
    return "rest" if parsed[:2] < (0, 16) else "jmap"


def known(extra: Iterable[str] = ()) -> tuple[str, ...]:
    return (*RELEASES, *(v for v in extra if v not in RELEASES))


def pin_problem(version: str, extra: Iterable[str] = ()) -> str | None:
    """Why `version` cannot be a pin, or None."""
    parsed = parse(version)
    if parsed is None:
        return f"{version!r} is not a release tag (vMAJOR.MINOR.PATCH, e.g. {DEFAULT_VERSION})"
    if parsed[:2] < OLDEST:
        return (
            f"{version!r} is older than v0.12.0 (v0.11 and earlier were stalwartlabs/mail-server, "
            "with another layout and unit name); use v0.12.0 or later"
        )
    if version not in known(extra):
        return (
            f"{version!r} is not a Stalwart release (known: v0.12.0..v0.15.5, "
            f"v0.16.0..{RELEASES[-1]}); a newer release can be allowed with stalwartReleases / "
            "PENGUINMAILS_STALWART_RELEASES"
        )
    return None


def pin_change_problem(old: str | None, new: str) -> str | None:
    """Why a server installed with `old` cannot be moved to `new` by re-running the install."""
    if not old or parse(old) is None or parse(new) is None:
        return None
    if generation(old) == "rest" and generation(new) == "jmap":
        return (
            f"cannot move from {old} to {new} in place: 0.16 needs an offline migration "
            "(UPGRADING/v0_16.md: back up, migrate_v016.py dump/convert, a recovery-mode start, "
            f"stalwart-cli apply); keep this server pinned to {old}"
        )
    if generation(old) == "jmap" and generation(new) == "rest":
        return f"cannot move from {old} back to {new}: 0.16 data cannot be read by 0.15"
    return None
