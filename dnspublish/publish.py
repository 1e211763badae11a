"""The merge rules: what publishing one of our records does to a zone, and what removing it undoes.

- SPF (`spf`): merged into the zone's own `v=spf1` record before its `all`, every other term
  kept; never a second SPF record; refused when the merge would pass the 10-lookup limit. Created
  only where there is none. Removal takes out exactly the terms we added (and restores the text
  that was there), or deletes the record when we created it and nothing else is left in it.
- DMARC, MTA-STS and TLS-RPT: a record of the zone's own is kept as it is (its policy is the
  customer's); ours is added only where none exists, and removed only if we added it.
- MX: a foreign MX is a `conflict` (replies would not reach us), unless `mx_policy="replace"`,
  which swaps it for ours and puts it back on removal.
- A/AAAA of the mail host: a foreign address there is a `conflict`; DKIM, SRV and PTR are ours:
  added beside whatever else is at the name, removed value by value.
Every other record in the zone (site verifications, the customer's TXT at the apex) is never
read for writing and never touched: changes name exact values, never whole RRsets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dnspublish import spf
from dnspublish.backends import Backend, Changed, PublishError, normal

ATTEMPTS = 8
KEEP_THEIRS = {"dmarc": "v=DMARC1", "mta_sts": "v=STSv1", "tls_rpt": "v=TLSRPTv1"}
EXCLUSIVE = ("a", "aaaa")


@dataclass(frozen=True)
class Want:
    """One record of ours: `value` as the verifier sees it (TXT strings joined), names
    absolute with their trailing dot."""

    purpose: str
    type: str
    fqdn: str
    value: str
    ttl: int = 3600


@dataclass
class Outcome:
    status: str  # published | conflict | error
    detail: str
    zone: str | None = None
    owned: dict[str, Any] = field(default_factory=dict)


def _retrying(fn: Callable[[], Outcome]) -> Outcome:
    for _ in range(ATTEMPTS):
        try:
            return fn()
        except Changed:
            continue
    raise PublishError(f"the records kept changing under us ({ATTEMPTS} attempts); try again")


def publish_record(
    backend: Backend, want: Want, *, zone: str | None = None, mx_policy: str = "keep"
) -> Outcome:
    """Publish `want`; never raises for what the service says (an `error` outcome names it)."""
    try:
        zone = zone or backend.find_zone(want.fqdn)
        found = zone

        def once() -> Outcome:
            outcome = _publish(backend, found, want, mx_policy)
            outcome.zone = found
            return outcome

        return _retrying(once)
    except PublishError as exc:
        return Outcome("error", str(exc), zone)


def _publish(backend: Backend, zone: str, want: Want, mx_policy: str) -> Outcome:
    current = backend.read(zone, want.fqdn, want.type)
    if want.purpose == "spf":
        return _publish_spf(backend, zone, want, current)
    if want.purpose in KEEP_THEIRS:
        return _publish_keep_theirs(backend, zone, want, current)
    return _publish_ours(backend, zone, want, current, mx_policy)


def _publish_keep_theirs(backend: Backend, zone: str, want: Want, current: list[str]) -> Outcome:
    """DMARC, MTA-STS, TLS-RPT: the zone's own record of the kind wins; ours only where none."""
    tag = KEEP_THEIRS[want.purpose].lower()
    theirs = [v for v in current if v.lower().replace(" ", "").startswith(tag)]
    if want.value in theirs:
        return Outcome("published", f"{want.fqdn} already has this record")
    if theirs:
        return Outcome(
            "published",
            f"kept the zone's own record at {want.fqdn} ({theirs[0]!r}); its policy is yours",
        )
    backend.change(zone, want.fqdn, want.type, want.ttl, add=[want.value], expect=current)
    return Outcome("published", f"added at {want.fqdn}", owned={"added": [want.value]})


def _conflict(want: Want, foreign: list[str], mx_policy: str) -> Outcome | None:
    """The conflict a foreign value at the name makes, or None when ours may go beside it."""
    if want.purpose == "mx" and foreign and mx_policy != "replace":
        return Outcome(
            "conflict",
            f"{want.fqdn} already has MX {', '.join(sorted(foreign))}: mail to the domain, "
            f"replies to this inbox included, goes there and never reaches {want.value}; "
            "remove it, or set the domain's mx_policy to replace",
        )
    if want.purpose in EXCLUSIVE and foreign:
        return Outcome(
            "conflict",
            f"{want.fqdn} already has {want.type} {', '.join(sorted(foreign))}; the mail host "
            f"must resolve to {want.value} only. Remove it or use another hostname",
        )
    return None


def _publish_ours(
    backend: Backend, zone: str, want: Want, current: list[str], mx_policy: str
) -> Outcome:
    """MX, A/AAAA, DKIM, SRV, PTR: added value by value; a foreign MX is replaced only under
    mx_policy replace, the foreign MX then coming out in the same change."""
    ours = normal(want.type, want.value)
    mine = [v for v in current if normal(want.type, v) == ours]
    foreign = [v for v in current if normal(want.type, v) != ours]
    conflict = _conflict(want, foreign, mx_policy)
    if conflict is not None:
        return conflict
    if mine and not (want.purpose == "mx" and foreign):
        return Outcome("published", f"{want.fqdn} already has this record")
    return _write_ours(backend, zone, want, current, mine, foreign)


def _write_ours(
    backend: Backend, zone: str, want: Want, current: list[str], mine: list[str], foreign: list[str]
) -> Outcome:
    """Add our value unless it is there; a foreign MX (here only under mx_policy replace) comes
    out in the same change, and `owned` says what to put back on removal."""
    replaced = foreign if want.purpose == "mx" else []
    backend.change(
        zone,
        want.fqdn,
        want.type,
        want.ttl,
        add=[] if mine else [want.value],
        remove=replaced,
        expect=current,
    )
    detail = f"added at {want.fqdn}"
    if replaced:
        detail = f"replaced MX {', '.join(sorted(replaced))} (mx_policy replace)"
    return Outcome(
        "published", detail, owned={"added": [] if mine else [want.value], "replaced": replaced}
    )


def _publish_spf(backend: Backend, zone: str, want: Want, current: list[str]) -> Outcome:
    records = [v for v in current if spf.is_spf(v)]
    add = spf.our_terms(want.value)
    if len(records) > 1:
        return Outcome(
            "error",
            f"{want.fqdn} has {len(records)} SPF records, which receivers treat as a permanent "
            "error; merge them into one first (we never add another)",
        )
    if not records:
        backend.change(zone, want.fqdn, "TXT", want.ttl, add=[want.value], expect=current)
        return Outcome(
            "published",
            f"created the SPF record at {want.fqdn}",
            owned={"created": True, "terms": add},
        )
    existing = records[0]
    merged, added = spf.merge(existing, add)
    if not added:
        return Outcome("published", f"the SPF record at {want.fqdn} already authorises us")
    if spf.lookups(merged) > spf.LOOKUP_LIMIT:
        return Outcome(
            "error",
            f"merging into the SPF record at {want.fqdn} would need {spf.lookups(merged)} DNS "
            f"lookups, over the limit of {spf.LOOKUP_LIMIT} (RFC 7208 4.6.4); flatten it first",
        )
    backend.change(
        zone, want.fqdn, "TXT", want.ttl, add=[merged], remove=[existing], expect=current
    )
    return Outcome(
        "published",
        f"merged {' '.join(added)} into the zone's SPF record: {merged!r}",
        owned={"created": False, "terms": added, "original": existing, "merged": merged},
    )


def remove_record(backend: Backend, want: Want, owned: dict[str, Any], *, zone: str) -> str:
    """Undo what `publish_record` did (its `owned`); returns what was done. Raises
    PublishError when the service cannot be reached or refuses."""

    def once() -> Outcome:
        current = backend.read(zone, want.fqdn, want.type)
        if want.purpose == "spf":
            return _remove_spf(backend, zone, want, owned, current)
        added = [v for v in owned.get("added", []) if v in current]
        restore = [v for v in owned.get("replaced", []) if v not in current]
        if not added and not restore:
            return Outcome("removed", "nothing of ours is left there")
        backend.change(
            zone, want.fqdn, want.type, want.ttl, add=restore, remove=added, expect=current
        )
        return Outcome(
            "removed",
            f"removed ours at {want.fqdn}"
            + (f", put back {', '.join(restore)}" if restore else ""),
        )

    return _retrying(once).detail


def _remove_spf(
    backend: Backend, zone: str, want: Want, owned: dict[str, Any], current: list[str]
) -> Outcome:
    terms = list(owned.get("terms", []))
    records = [v for v in current if spf.is_spf(v)]
    if not terms or len(records) != 1:
        return Outcome("removed", "no SPF terms of ours are left")
    record = records[0]
    if record == owned.get("merged") and owned.get("original"):
        left = str(owned["original"])  # exactly what was there
    else:
        left = spf.unmerge(record, terms)
    if left == record:
        return Outcome("removed", "no SPF terms of ours are left")
    if owned.get("created") and spf.only_all(left):
        backend.change(zone, want.fqdn, "TXT", want.ttl, remove=[record], expect=current)
        return Outcome("removed", f"deleted the SPF record we created at {want.fqdn}")
    backend.change(zone, want.fqdn, "TXT", want.ttl, add=[left], remove=[record], expect=current)
    return Outcome("removed", f"the SPF record at {want.fqdn} is {left!r} again")
