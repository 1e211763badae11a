"""`dns.verify`: every DNS record that is due, checked in batches with short transactions.

    claim (short transaction)  ->  resolve (no transaction)  ->  write + settle (short transaction)

The steps are the DNS feature's (`domain.dns_records.sweep`: `claim`, `write_batch`); this job
only sequences them, one resolver and one checker per process, so inboxes of one domain share
their lookups, and the write of one batch overlaps the lookups of the next.

One process's lookups (and the parsing of their replies) fill one core well before the network
is the limit, so a sweep that finds a full batch due starts helpers, up to
`dns_verify_processes` processes in all (spawned: a fork of the threaded scheduler could
inherit a held lock). Each claims and checks batches until none is due, with its own resolver
and its own database engine; `FOR UPDATE SKIP LOCKED` in the claim keeps two processes from ever
taking the same record. A batch that fails, or a helper that dies, is reported in the stats and
costs only its own records, which come due again when their claim runs out."""

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import time
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess

from database.session import database_url, session_scope
from domain.dns_records.sweep import Claimed, SessionFactory, SweepStats, claim, write_batch
from kit.aio import run_sweep
from kit.time import utcnow
from maildns.resolver import Resolver
from maildns.verify import Checker
from settings import Settings, reset_settings

log = logging.getLogger(__name__)
NAME = "dns.verify"


async def _sweep(
    resolver: Resolver,
    session_factory: SessionFactory,
    batch_size: int,
    max_batches: int | None,
    settings: Settings,
    on_full_batch: Callable[[], Awaitable[None]] | None = None,
) -> SweepStats:
    stats = SweepStats()
    checker = Checker(resolver)
    writing: asyncio.Future[None] | None = None

    def take() -> list[Claimed]:
        with session_factory() as session:
            return claim(session, batch_size, utcnow(), settings.dns_claim_seconds)

    async def settle(previous: asyncio.Future[None] | None) -> None:
        if previous is None:
            return
        try:
            await previous
        except Exception:
            # write_batch already falls back inbox by inbox; this is a failure beyond that.
            log.exception("dns.verify: writing a batch failed")
            stats.failed_batches += 1

    # The next batch is claimed while this one is checked once checking a batch has taken
    # longer than claiming one: a claim of thousands of records takes a second or more under
    # load, and waiting for it between batches left the resolver idle for a fifth of the
    # sweep. Batches whose answers are all cached (checked in no time) are claimed one after
    # the other, as before, so one process does not run ahead of helpers still starting.
    claiming: asyncio.Future[list[Claimed]] | None = None
    last_claim = last_check = 0.0
    try:
        while max_batches is None or stats.batches < max_batches:
            started = time.perf_counter()
            if claiming is None:
                claiming = asyncio.ensure_future(asyncio.to_thread(take))
            try:
                batch = await claiming
            finally:
                claiming = None
            last_claim = time.perf_counter() - started
            stats.claim_seconds += last_claim
            if not batch:
                break
            if on_full_batch is not None and len(batch) == batch_size:
                await on_full_batch()
                on_full_batch = None
            stats.batches += 1
            stats.claimed += len(batch)
            if (
                last_check > last_claim
                and len(batch) == batch_size
                and (max_batches is None or stats.batches < max_batches)
            ):
                claiming = asyncio.ensure_future(asyncio.to_thread(take))
            started = time.perf_counter()
            try:
                results = await checker.check_all([c.target for c in batch])
            except Exception:
                log.exception("dns.verify: a batch of %d could not be checked", len(batch))
                stats.failed_batches += 1
                stats.skipped.extend(sorted({c.inbox_id for c in batch}))
                continue
            finally:
                last_check = time.perf_counter() - started
                stats.check_seconds += last_check
            await settle(writing)
            writing = asyncio.ensure_future(
                asyncio.to_thread(write_batch, session_factory, batch, results, stats, settings)
            )
    finally:
        if claiming is not None:  # only on the way out of a failure: let its thread finish
            # Claimed but never checked: they come due again when their claim runs out.
            with contextlib.suppress(Exception):
                await claiming
        await settle(writing)
    stats.queries = resolver.stats.queries
    stats.timeouts = resolver.stats.timeouts
    stats.per_process = [stats.claimed]
    return stats


def _helper(
    settings: Settings, url: str, batch_size: int, conn: multiprocessing.connection.Connection
) -> None:
    """A helper process: sweeps until nothing is due, sends its stats (or why it failed)."""
    # Its own engine on the parent's database (which may be the embedded server's URL).
    os.environ["PENGUINMAILS_DATABASE_URL"] = url
    reset_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:

        async def main() -> SweepStats:
            async with Resolver.from_settings(settings) as resolver:
                return await _sweep(resolver, session_scope, batch_size, None, settings)

        conn.send(run_sweep(main()))
    except Exception as exc:
        log.exception("dns.verify: helper %d failed", os.getpid())
        conn.send(f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


class _Helpers:
    """The helper processes of one sweep, started when it finds a full batch due."""

    def __init__(self, settings: Settings, batch_size: int, count: int) -> None:
        self.settings, self.batch_size, self.count = settings, batch_size, count
        self.running: list[tuple[BaseProcess, multiprocessing.connection.Connection]] = []

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._start)
        except OSError:  # no processes to be had: this one does the whole sweep
            log.exception("dns.verify: could not start helper processes")

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        url = database_url(self.settings)
        for _ in range(self.count):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_helper,
                args=(self.settings, url, self.batch_size, send),
                name="dns.verify helper",
                daemon=True,
            )
            process.start()
            send.close()  # the child holds the only sending end: its exit is our EOF
            self.running.append((process, receive))

    def collect(self, stats: SweepStats) -> None:
        """Wait for every helper and add its figures; a helper that failed or died is
        logged and counted, its records wait for their claim to run out."""
        for process, conn in self.running:
            try:
                result: SweepStats | str = conn.recv()
            except EOFError:
                process.join()
                result = f"exited with code {process.exitcode} before reporting"
            finally:
                conn.close()
            process.join()
            if isinstance(result, SweepStats):
                stats.add(result)
            else:
                log.error("dns.verify: helper pid %s %s", process.pid, result)
                stats.workers += 1
                stats.failed_workers += 1
        self.running.clear()


def verify_due(
    settings: Settings,
    *,
    session_factory: SessionFactory = session_scope,
    resolver_factory: Callable[[Settings], Resolver] = Resolver.from_settings,
    batch_size: int | None = None,
    max_batches: int | None = None,
    processes: int | None = None,
) -> SweepStats:
    """Check every due record (or `max_batches` batches of them) and settle their inboxes.
    Idempotent and safe to run in several processes at once.

    Up to `processes` (default `dns_verify_processes`) processes share the work once a full
    batch is due. A given session or resolver factory, or `max_batches`, keeps the sweep in
    this process: a helper builds its own from the settings."""
    started = time.perf_counter()
    size = batch_size or settings.dns_batch_size
    count = settings.dns_verify_processes if processes is None else processes
    alone = (
        session_factory is not session_scope
        or resolver_factory != Resolver.from_settings  # a bound method: a new object each time
        or max_batches is not None
    )
    helpers = None if alone or count <= 1 else _Helpers(settings, size, count - 1)

    async def main() -> SweepStats:
        async with resolver_factory(settings) as resolver:
            return await _sweep(
                resolver,
                session_factory,
                size,
                max_batches,
                settings,
                helpers.start if helpers is not None else None,
            )

    try:
        stats = run_sweep(main())
    except BaseException:
        if helpers is not None:
            helpers.collect(SweepStats())  # never leave them behind
        raise
    if helpers is not None:
        helpers.collect(stats)
    stats.seconds = time.perf_counter() - started
    if stats.claimed:
        log.info("dns.verify: %s", stats.as_dict())
    return stats


def run(settings: Settings) -> SweepStats:
    """The registered periodic job."""
    return verify_due(settings)
