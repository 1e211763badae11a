"""Where records are written: one small interface, one class per kind of DNS service.

`read` returns the values at a name as the service holds them (TXT strings joined into one value
each, other types as presentation text with absolute names). `change` replaces `remove` by `add`
in one RRset; with `expect` it is conditional: it fails with `Changed` when the RRset is no
longer exactly `expect` (RFC 2136 prerequisites make that atomic on the server; a backend that
cannot, like an HTTP API, re-reads just before writing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class PublishError(Exception):
    """The service refused or could not be reached; the message says what it said."""


class Unreachable(PublishError):
    """The service could not be reached at all (no answer, connection refused)."""


class Changed(Exception):
    """The RRset changed between our read and our write: read again and retry."""


class Backend(Protocol):
    description: str

    def find_zone(self, fqdn: str) -> str: ...

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]: ...

    def change(
        self,
        zone: str,
        fqdn: str,
        rtype: str,
        ttl: int,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expect: Sequence[str] | None = None,
    ) -> None: ...


TXT_CHUNK = 255


def txt_rdata(value: str) -> str:
    """One TXT value as RFC 1035 character-strings (255 bytes each), quoted and escaped."""
    chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def normal(rtype: str, value: str) -> str:
    """A value in the form comparisons use (case of names and the trailing dot ignored)."""
    if rtype == "TXT":
        return value
    return " ".join(
        p.lower().rstrip(".") if i == len(value.split()) - 1 else p
        for i, p in enumerate(value.split())
    )


def txt_join(value: str) -> str:
    """A TXT value shown as quoted strings (`"v=DKIM1; ..." "...rest"`) back to the one string
    receivers see; an unquoted value is returned as it is."""
    import re

    stripped = value.strip()
    if not stripped.startswith('"'):
        return stripped
    return "".join(
        m.group(1).replace('\\"', '"') for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', value)
    )


class DryRun:
    """Reads through `backend`, writes nothing: each change it would make is kept in
    `changes` as (fqdn, type, add, remove), for `penguinmails dns publish --dry-run`."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.description = backend.description
        self.changes: list[tuple[str, str, list[str], list[str]]] = []

    def find_zone(self, fqdn: str) -> str:
        return self.backend.find_zone(fqdn)

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        return self.backend.read(zone, fqdn, rtype)

    def change(
        self,
        zone: str,
        fqdn: str,
        rtype: str,
        ttl: int,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expect: Sequence[str] | None = None,
    ) -> None:
        self.changes.append((fqdn, rtype, list(add), list(remove)))
