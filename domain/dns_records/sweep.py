"""The dns.verify job: every record that is due, checked in batches with short transactions.

    claim (short transaction)  ->  resolve (no transaction)  ->  write + settle (short transaction)

A claim moves the records' `next_check_at` forward by the claim time inside a
`FOR UPDATE SKIP LOCKED` select, so several workers never take the same record, and a worker that
dies only delays its records until the claim runs out. Records not yet verified come due every
`dns_verify_interval_seconds`, verified ones every `dns_reverify_seconds`. One resolver and one
checker serve the whole sweep, so inboxes of one domain share their lookups. The write of one
batch overlaps the lookups of the next.
"""

import asyncio
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
from kit.time import utcnow
from maildns.checks import RecordCheck, RecordStatus
from maildns.resolver import Resolver
from maildns.verify import Checker, Target
from settings import get_settings

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
    seconds: float = 0.0
    claim_seconds: float = 0.0
    check_seconds: float = 0.0
    write_seconds: float = 0.0
    skipped: list[uuid.UUID] = field(default_factory=list)  # inboxes whose write failed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    inbox_id: uuid.UUID
    previous: str | None
    target: Target


def claim(session: Session, limit: int, now: datetime, lease_seconds: int) -> list[_Claimed]:
    rows = session.execute(
        _CLAIM, {"now": now, "limit": limit, "lease": now + timedelta(seconds=lease_seconds)}
    ).all()
    return [
        _Claimed(
            row[0],
            row[1],
            row[7],
            Target(row[2], row[3], row[4], row[5], row[6], row[8], row[9], row[10]),
        )
        for row in rows
    ]


def _write_one(
    session_factory: SessionFactory, batch: list[_Claimed], results: list[RecordCheck]
) -> Settled:
    def write(session: Session) -> Settled:
        inbox_ids = sorted({c.inbox_id for c in batch})
        # Lock order: inboxes (in id order) before their records, as a finishing run does.
        lock_inboxes(session, inbox_ids)
        apply_checks(session, [(c.id, c.target.value, c.previous) for c in batch], results)
        return settle_inboxes(session, inbox_ids)

    if session_factory is session_scope:
        return run_in_transaction(write)
    with session_factory() as session:
        return write(session)


def _write(
    session_factory: SessionFactory,
    batch: list[_Claimed],
    results: list[RecordCheck],
    stats: SweepStats,
) -> None:
    """Write a batch in one transaction; if that fails, inbox by inbox, so one bad row is
    skipped and reported (its records come due again when their claim runs out) and never
    costs the batch."""
    started = time.perf_counter()
    written: list[tuple[_Claimed, RecordCheck]] = []
    try:
        settled = _write_one(session_factory, batch, results)
        written = list(zip(batch, results, strict=True))
    except Exception:
        log.warning("dns.verify: a batch of %d failed; writing inbox by inbox", len(batch))
        settled = Settled(0, 0)
        groups: dict[uuid.UUID, list[tuple[_Claimed, RecordCheck]]] = {}
        for pair in zip(batch, results, strict=True):
            groups.setdefault(pair[0].inbox_id, []).append(pair)
        for inbox_id, pairs in groups.items():
            try:
                one = _write_one(session_factory, [c for c, _ in pairs], [r for _, r in pairs])
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


async def _sweep(
    resolver: Resolver,
    session_factory: SessionFactory,
    batch_size: int,
    lease_seconds: int,
    max_batches: int | None,
) -> SweepStats:
    stats = SweepStats()
    checker = Checker(resolver)
    writing: asyncio.Future[None] | None = None

    def take() -> list[_Claimed]:
        with session_factory() as session:
            return claim(session, batch_size, utcnow(), lease_seconds)

    try:
        while max_batches is None or stats.batches < max_batches:
            started = time.perf_counter()
            batch = await asyncio.to_thread(take)
            stats.claim_seconds += time.perf_counter() - started
            if not batch:
                break
            stats.batches += 1
            stats.claimed += len(batch)
            started = time.perf_counter()
            results = await checker.check_all([c.target for c in batch])
            stats.check_seconds += time.perf_counter() - started
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(
                asyncio.to_thread(_write, session_factory, batch, results, stats)
            )
    finally:
        if writing is not None:
            await writing
    stats.queries = resolver.stats.queries
    return stats


def verify_due(
    *,
    session_factory: SessionFactory = session_scope,
    resolver_factory: Callable[[], Resolver] = Resolver.from_settings,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> SweepStats:
    """RecordCheck every due record (or `max_batches` batches of them) and settle their inboxes.
    Idempotent and safe to run in several processes at once."""
    settings = get_settings()
    started = time.perf_counter()

    async def main() -> SweepStats:
        async with resolver_factory() as resolver:
            return await _sweep(
                resolver,
                session_factory,
                batch_size or settings.dns_batch_size,
                settings.dns_claim_seconds,
                max_batches,
            )

    stats = asyncio.run(main())
    stats.seconds = time.perf_counter() - started
    if stats.claimed:
        log.info("dns.verify: %s", stats.as_dict())
    return stats


def run_job() -> SweepStats:
    """The registered periodic job."""
    return verify_due()
