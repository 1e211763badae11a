"""`dns.verify`: every DNS record that is due, checked in batches with short transactions.

    claim (short transaction)  ->  resolve (no transaction)  ->  write + settle (short transaction)

The steps are the DNS feature's (`domain.dns_records.sweep`: `claim`, `write_batch`); this job
only sequences them, one resolver and one checker for the whole run, so inboxes of one domain
share their lookups, and the write of one batch overlaps the lookups of the next."""

import asyncio
import logging
import time
from collections.abc import Callable

from database.session import session_scope
from domain.dns_records.sweep import Claimed, SessionFactory, SweepStats, claim, write_batch
from kit.time import utcnow
from maildns.resolver import Resolver
from maildns.verify import Checker
from settings import Settings

log = logging.getLogger(__name__)
NAME = "dns.verify"


async def _sweep(
    resolver: Resolver,
    session_factory: SessionFactory,
    batch_size: int,
    max_batches: int | None,
    settings: Settings,
) -> SweepStats:
    stats = SweepStats()
    checker = Checker(resolver)
    writing: asyncio.Future[None] | None = None

    def take() -> list[Claimed]:
        with session_factory() as session:
            return claim(session, batch_size, utcnow(), settings.dns_claim_seconds)

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
                asyncio.to_thread(write_batch, session_factory, batch, results, stats, settings)
            )
    finally:
        if writing is not None:
            await writing
    stats.queries = resolver.stats.queries
    return stats


def verify_due(
    settings: Settings,
    *,
    session_factory: SessionFactory = session_scope,
    resolver_factory: Callable[[Settings], Resolver] = Resolver.from_settings,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> SweepStats:
    """RecordCheck every due record (or `max_batches` batches of them) and settle their inboxes.
    Idempotent and safe to run in several processes at once."""
    started = time.perf_counter()

    async def main() -> SweepStats:
        async with resolver_factory(settings) as resolver:
            return await _sweep(
                resolver,
                session_factory,
                batch_size or settings.dns_batch_size,
                max_batches,
                settings,
            )

    stats = asyncio.run(main())
    stats.seconds = time.perf_counter() - started
    if stats.claimed:
        log.info("dns.verify: %s", stats.as_dict())
    return stats


def run(settings: Settings) -> SweepStats:
    """The registered periodic job."""
    return verify_due(settings)
