"""The steps of the `dns.verify` job (`scheduler/jobs/dns_verify.py`): claim due records, write a
batch's results and settle its inboxes, each in a short transaction.

    claim (short transaction)  ->  resolve (no transaction)  ->  write + settle (short transaction)

A claim moves the records' `next_check_at` forward by the claim time inside a
`FOR UPDATE SKIP LOCKED` select, so several workers never take the same record, and a worker that
dies only delays its records until the claim runs out. Records not yet verified come due every
`dns_verify_interval_seconds`, verified ones every `dns_reverify_seconds`. One resolver and one
checker serve each sweep process, so inboxes of one domain share their lookups. The write of one
batch overlaps the lookups of the next.
"""

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from database.session import session_scope
from database.transactions import run_in_transaction
from domain.dns_records.service import Settled, apply_checks, lock_inboxes, settle_inboxes
from maildns.checks import RecordCheck, RecordStatus
from maildns.verify import Target
from settings.dns import DnsSettings

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]

_CLAIM = text(
    """
    WITH due AS (
        SELECT r.id FROM dns_records r
        JOIN inboxes i ON i.id = r.inbox_id
        JOIN vps_servers s ON s.id = i.vps_id
        WHERE r.next_check_at <= :now AND s.ip_address IS NOT NULL AND i.status <> 'deleting'
        ORDER BY r.next_check_at
        LIMIT :limit
        FOR UPDATE OF r SKIP LOCKED
    )
    UPDATE dns_records r SET next_check_at = :lease
    FROM due, inboxes i, vps_servers s
    WHERE r.id = due.id AND i.id = r.inbox_id AND s.id = i.vps_id
    RETURNING r.id, r.inbox_id, r.purpose, r.record_type, r.record_name, r.record_value,
              r.domain, r.verification_status, host(s.ip_address), s.hostname,
              host(s.ipv6_address)
    """
)


@dataclass
class SweepStats:
    claimed: int = 0
    verified: int = 0
    not_verified: int = 0
    errors: int = 0
    inboxes_ready: int = 0
    inboxes_regressed: int = 0
    batches: int = 0
    queries: int = 0
    timeouts: int = 0  # DNS tries that got no answer in time (each retried or an error)
    seconds: float = 0.0
    claim_seconds: float = 0.0
    check_seconds: float = 0.0
    write_seconds: float = 0.0
    skipped: list[uuid.UUID] = field(default_factory=list)  # inboxes whose write failed
    failed_batches: int = 0  # batches that could not be checked or written
    workers: int = 1  # processes that took part
    failed_workers: int = 0  # helper processes that failed or died before reporting
    per_process: list[int] = field(default_factory=list)  # records each process claimed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def add(self, other: "SweepStats") -> None:
        """Add another process's figures (its wall time is within this one's)."""
        for name, value in other.__dict__.items():
            if name == "seconds":
                continue
            if isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    inbox_id: uuid.UUID
    previous: str | None
    target: Target


def claim(session: Session, limit: int, now: datetime, lease_seconds: int) -> list[Claimed]:
    rows = session.execute(
        _CLAIM, {"now": now, "limit": limit, "lease": now + timedelta(seconds=lease_seconds)}
    ).all()
    return [
        Claimed(
            row[0],
            row[1],
            row[7],
            Target(row[2], row[3], row[4], row[5], row[6], row[8], row[9], row[10]),
        )
        for row in rows
    ]


def _write_one(
    session_factory: SessionFactory,
    batch: list[Claimed],
    results: list[RecordCheck],
    settings: DnsSettings,
) -> Settled:
    def write(session: Session) -> Settled:
        inbox_ids = sorted({c.inbox_id for c in batch})
        # Lock order: inboxes (in id order) before their records, as a finishing run does.
        lock_inboxes(session, inbox_ids)
        apply_checks(
            session,
            [(c.id, c.target.value, c.previous) for c in batch],
            results,
            settings=settings,
        )
        return settle_inboxes(session, inbox_ids)

    if session_factory is session_scope:
        return run_in_transaction(write)
    with session_factory() as session:
        return write(session)


def write_batch(
    session_factory: SessionFactory,
    batch: list[Claimed],
    results: list[RecordCheck],
    stats: SweepStats,
    settings: DnsSettings,
) -> None:
    """Write a batch in one transaction; if that fails, inbox by inbox, so one bad row is
    skipped and reported (its records come due again when their claim runs out) and never
    costs the batch."""
    started = time.perf_counter()
    written: list[tuple[Claimed, RecordCheck]] = []
    try:
        settled = _write_one(session_factory, batch, results, settings)
        written = list(zip(batch, results, strict=True))
    except Exception:
        log.warning("dns.verify: a batch of %d failed; writing inbox by inbox", len(batch))
        settled = Settled(0, 0)
        groups: dict[uuid.UUID, list[tuple[Claimed, RecordCheck]]] = {}
        for pair in zip(batch, results, strict=True):
            groups.setdefault(pair[0].inbox_id, []).append(pair)
        for inbox_id, pairs in groups.items():
            try:
                one = _write_one(
                    session_factory, [c for c, _ in pairs], [r for _, r in pairs], settings
                )
            except Exception:
                log.exception("dns.verify: inbox %s skipped", inbox_id)
                stats.skipped.append(inbox_id)
                continue
            settled = Settled(settled.ready + one.ready, settled.regressed + one.regressed)
            written += pairs
    stats.write_seconds += time.perf_counter() - started
    stats.inboxes_ready += settled.ready
    stats.inboxes_regressed += settled.regressed
    for _, check in written:
        if check.status is RecordStatus.VERIFIED:
            stats.verified += 1
        elif check.status is RecordStatus.ERROR:
            stats.errors += 1
        else:
            stats.not_verified += 1
