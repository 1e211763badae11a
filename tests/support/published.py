"""Publish an inbox's generated records on nsd, exactly as the user would, optionally broken."""

import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from maildns import plan
from tests.support.nsd import Nsd


def zones_for(
    records: Iterable[DnsRecord],
    *,
    drop: Iterable[str] = (),
    replace: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """origin -> zone lines. `drop` leaves out purposes; `replace` swaps a purpose's line."""
    dropped, replace = set(drop), dict(replace or {})
    zones: dict[str, list[str]] = {}
    for r in records:
        if r.purpose in dropped:
            continue
        planned = plan.PlannedRecord(
            r.purpose, r.record_type, r.record_name, r.record_value, r.required, 60, r.domain
        )
        origin = planned.fqdn if r.purpose == plan.PTR else r.domain
        line = replace.pop(r.purpose, None) or planned.zone_line()
        zones.setdefault(origin, []).append(line)
    for origin in {r.domain for r in records}:
        zones.setdefault(origin, [])
    return {origin: "\n".join(lines) for origin, lines in zones.items()}


def publish_inbox(session: Session, nsd: Nsd, inbox_id: uuid.UUID, **options: object) -> None:
    records = session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox_id)).all()
    assert records, "no records generated"
    nsd.publish(zones_for(records, **options))  # type: ignore[arg-type]
