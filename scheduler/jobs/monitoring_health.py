"""`monitoring.health`: probe every monitored server and store the results as they come.

Named steps with short transactions: read the monitored servers (one read); ask the blocklists
(a thread of its own, beside the probes); probe the live servers with no transaction open, each
server's results handed to the history writer the moment its last check ends; the writer (a
thread) records them in batches, each its own transaction, while the probes go on; purge old
history. A batch that fails is retried once whole, then server by server, so one bad row is
skipped and reported and never costs the others their results, and the sweep goes on. A
Postgres advisory lock keeps two processes from sweeping at once (the second one skips). The
steps' domain parts are `domain.health.sweep` (which servers, probe settings, simulated results
for sandbox servers) and `domain.health.service`."""

import asyncio
import logging
import queue
import resource
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import text

from database.models.events import Event
from database.session import get_engine, session_scope
from database.transactions import run_in_transaction
from domain.events import catalogue
from domain.health import blocklists as blocklist_budget
from domain.health import service
from domain.health.service import ServerInfo
from domain.health.sweep import Monitored, monitored, probe_config, simulated_results
from kit.aio import run_sweep
from kit.time import utcnow
from probes import dnsbl
from probes.dnsbl import ZoneAnswer
from probes.shards import probe_sharded
from probes.types import Check, CheckResult, ProbeConfig, Status
from settings import Settings

log = logging.getLogger(__name__)
NAME = "monitoring.health"
LOCK_KEY = 0x5045_4E47_4845_414C  # "PENGHEAL": one sweep at a time across processes


@dataclass
class SweepReport:
    servers: int = 0
    probed: int = 0
    simulated: int = 0
    checks: int = 0
    alerts: int = 0
    recoveries: int = 0
    purged: int = 0
    skipped: bool = False
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    failed_servers: list[uuid.UUID] = field(default_factory=list)  # results not recorded
    dnsbl_queries: int = 0  # blocklist lookups this sweep made
    dnsbl_shared: int = 0  # answered from dnsbl_lookups (asked within the interval)
    batches: int = 0  # history transactions committed
    batch_retries: int = 0  # batches that failed once and were tried again


@contextmanager
def _sweep_lock() -> Iterator[bool]:
    # AUTOCOMMIT: the lock lives on the connection, not in a transaction left open for the sweep.
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}))
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})


def _fresh(chunk: "Results") -> "Results":
    """The chunk with its results' data copied: applying results takes the seen host keys out
    of the data, and a retried transaction must see them again."""
    return [(info, [replace(r, data=dict(r.data)) for r in results]) for info, results in chunk]


def _record(
    chunk: list[tuple[ServerInfo, list[CheckResult]]], now: datetime, report: SweepReport
) -> list[Event]:
    """One transaction for the chunk; if it fails, once more whole (a lost connection, a
    passing fault), then server by server, so one bad row is skipped and reported
    (`report.failed_servers`) and never costs the others their results."""
    for attempt in (1, 2):
        try:
            events = run_in_transaction(
                lambda session: service.apply_results(session, _fresh(chunk), now)
            )
        except Exception:
            log.warning(
                "monitoring.health: a batch of %d failed (attempt %d)",
                len(chunk),
                attempt,
                exc_info=True,
            )
            report.batch_retries += attempt == 1
            continue
        report.batches += 1
        return events
    if len(chunk) == 1:
        log.error("monitoring.health: results of server %s skipped", chunk[0][0].vps_id)
        report.failed_servers.append(chunk[0][0].vps_id)
        return []
    return [event for item in chunk for event in _record_one(item, now, report)]


def _record_one(
    item: tuple[ServerInfo, list[CheckResult]], now: datetime, report: SweepReport
) -> list[Event]:
    try:
        events = run_in_transaction(
            lambda session: service.apply_results(session, _fresh([item]), now)
        )
    except Exception:
        log.exception("monitoring.health: results of server %s skipped", item[0].vps_id)
        report.failed_servers.append(item[0].vps_id)
        return []
    report.batches += 1
    return events


Results = list[tuple[ServerInfo, list[CheckResult]]]


class Writer:
    """The history writer: a thread recording results in batches (`batch_size` at most, sorted
    by server id, the order every writer of server rows locks them in) while the probes go on.
    A batch is whatever has arrived by the time the previous one committed, or `linger`
    seconds after its first result, so writes keep pace with the probes without a transaction
    per server. Each live server's blocklist result joins it here, once the blocklists
    step (`blocklists`, beside the probes) has answered."""

    def __init__(
        self,
        now: datetime,
        batch_size: int,
        report: SweepReport,
        extra: "Future[dict[uuid.UUID, CheckResult]] | None" = None,
        linger: float = 0.2,
    ) -> None:
        self.now, self.batch_size, self.report = now, batch_size, report
        self.extra, self.linger = extra, linger
        self._queue: queue.Queue[tuple[ServerInfo, list[CheckResult]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="health-writer", daemon=True)
        self._extra: dict[uuid.UUID, CheckResult] | None = None
        self.error: BaseException | None = None  # the blocklists step's, raised by run()

    def __enter__(self) -> "Writer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()

    def put(self, info: ServerInfo, results: list[CheckResult]) -> None:
        self._queue.put((info, results))

    def _run(self) -> None:
        done = False
        while not done:
            first = self._queue.get()
            if first is None:
                return
            batch, deadline = [first], time.monotonic() + self.linger
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    done = True
                    break
                batch.append(item)
            self._write(batch)

    def _blocklist_results(self) -> dict[uuid.UUID, CheckResult]:
        if self._extra is None:
            self._extra = {}
            if self.extra is not None:
                try:
                    self._extra = self.extra.result()
                except Exception as exc:  # the histories still get written, without it
                    log.exception("monitoring.health: the blocklists step failed")
                    self.error = exc
        return self._extra

    def _write(self, batch: Results) -> None:
        extra = self._blocklist_results()
        chunk: Results = []
        for info, checks in sorted(batch, key=lambda item: item[0].vps_id):
            more = extra.get(info.vps_id)
            checks = [*checks, more] if more is not None else checks
            chunk.append((info, checks))
            for r in checks:
                self.report.statuses[r.status.value] = (
                    self.report.statuses.get(r.status.value, 0) + 1
                )
            self.report.checks += len(checks)
        recorded = _record(chunk, self.now, self.report)
        self.report.alerts += sum(e.type == catalogue.HEALTH_ALERT.name for e in recorded)
        self.report.recoveries += sum(e.type == catalogue.HEALTH_RECOVERED.name for e in recorded)


def probe(
    servers: list[Monitored],
    config: ProbeConfig,
    now: datetime,
    report: SweepReport,
    deliver: Callable[[ServerInfo, list[CheckResult]], None],
    processes: int = 1,
) -> None:
    """Sandbox servers' simulated results, then the live servers probed (no transaction
    open; across `processes` processes, `probes.shards`), each server's results delivered as
    soon as its checks are done."""
    live = [s for s in servers if not s.sandbox]
    for s in servers:
        if s.sandbox:
            deliver(s.info, simulated_results(config.checks, s.simulation))
    report.servers, report.probed = len(servers), len(live)
    report.simulated = len(servers) - len(live)
    if not live:
        return
    _raise_fd_limit(len(live))
    # Blocklists are asked by the `blocklists` step, under the budget shared by every worker.
    direct = replace(config, checks=config.checks - {Check.DNSBL})
    info = {s.target.key: s.info for s in live}
    probe_sharded(
        [s.target for s in live],
        direct,
        now,
        lambda key, checks: deliver(info[key], checks),
        processes,
    )


SOCKETS_PER_SERVER = 6  # when every server hangs: SSH, SMTP, 443, 465, 993, and one spare


def _raise_fd_limit(servers: int) -> None:
    """Slow and hung servers' steps give their slots back (probes/slots.py) but keep their
    sockets until their deadlines: the soft limit (often 1024) goes up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # not allowed here: the warning below says so
            pass
    if soft != resource.RLIM_INFINITY and soft < SOCKETS_PER_SERVER * servers:
        log.warning(
            "monitoring.health: %d open files allowed, %d servers to probe: raise LimitNOFILE",
            soft,
            servers,
        )


async def _ask(config: ProbeConfig, asks: list[tuple[dnsbl.Blocklist, str]]) -> list[ZoneAnswer]:
    resolver = dnsbl.make_resolver(config.dnsbl_nameservers, config.timeout)
    slots = asyncio.Semaphore(max(1, config.concurrency))

    async def one(bl: dnsbl.Blocklist, subject: str) -> ZoneAnswer:
        async with slots:
            return await dnsbl.lookup(resolver, subject, bl, config.dnsbl_dqs_key)

    return list(await asyncio.gather(*(one(bl, subject) for bl, subject in asks)))


def blocklists(
    servers: list[Monitored],
    config: ProbeConfig,
    now: datetime,
    interval: timedelta,
    report: SweepReport,
) -> dict[uuid.UUID, CheckResult]:
    """The dnsbl check of every live server: its IPv4 and IPv6 on the IP lists (and the domains
    of its inboxes on the domain lists, for the warmup and reputation), each (list, subject)
    asked at most once per interval across all workers (`domain.health.blocklists`), each list
    trusted only while it passes its RFC 5782 test entries. By server id, for the writer."""
    live = [s for s in servers if not s.sandbox]
    if Check.DNSBL not in config.checks or not live:
        return {}
    lists = dnsbl.lists(config.dnsbl_zones, config.dnsbl_domain_zones)
    ip_lists = [bl for bl in lists if bl.kind == dnsbl.IP]
    with session_scope() as session:
        domains = blocklist_budget.domains_on(session, [s.info.vps_id for s in live])
    addresses = {
        s.info.vps_id: [a for a in (s.target.address, s.target.ipv6) if a and dnsbl.is_ip(a)]
        for s in live
    }
    asks: dict[tuple[str, str], dnsbl.Blocklist] = {}
    for bl in lists:
        for entry in dnsbl.TEST_ENTRIES[bl.kind]:
            asks[(bl.zone, entry)] = bl
        if bl.kind == dnsbl.IP:
            subjects = {a for found in addresses.values() for a in found}
        else:
            subjects = {d for found in domains.values() for d in found}
        for subject in subjects:
            asks[(bl.zone, subject)] = bl
    with session_scope() as session:
        known, mine = blocklist_budget.claim(
            session, asks, now, interval, timedelta(seconds=max(60.0, 3 * config.timeout))
        )
    answers = run_sweep(_ask(config, [(asks[p], p[1]) for p in mine])) if mine else []
    if answers:
        with session_scope() as session:
            blocklist_budget.store(session, answers, now)
    report.dnsbl_queries += len(answers)
    report.dnsbl_shared += len(known)
    known.update({(a.zone, a.subject): a for a in answers})

    def answer(zone: str, subject: str) -> ZoneAnswer:
        return known.get(
            (zone, subject),
            ZoneAnswer(
                zone, dnsbl.UNKNOWN, detail="being looked up by another worker", subject=subject
            ),
        )

    health = {
        bl.zone: dnsbl.health_of(bl, *(answer(bl.zone, e) for e in dnsbl.TEST_ENTRIES[bl.kind]))
        for bl in ip_lists
    }
    by_server: dict[uuid.UUID, CheckResult] = {}
    for s in live:
        found = addresses[s.info.vps_id]
        if not found:
            by_server[s.info.vps_id] = CheckResult(
                Check.DNSBL, Status.UNKNOWN, "no IP address to look up"
            )
            continue
        by_server[s.info.vps_id] = dnsbl.evaluate(
            s.target.address, [answer(bl.zone, a) for a in found for bl in ip_lists], health
        )
    return by_server


def purge(now: datetime, retention: timedelta, report: SweepReport) -> None:
    """History older than the retention, 10,000 rows per transaction."""
    while True:
        with session_scope() as session:
            purged = service.purge_history(session, now, retention)
        report.purged += purged
        if purged < 10000:
            return


def run(
    settings: Settings,
    config: ProbeConfig | None = None,
    *,
    batch_size: int = 200,
    retention: timedelta | None = None,
) -> SweepReport:
    """The job: the steps in order, under the one-sweep-at-a-time lock. `config` replaces the
    probe settings drawn from `settings` (tests point the probes at loopback servers)."""
    started = time.perf_counter()
    config = config or probe_config(settings)
    retention = retention or timedelta(days=settings.health_retention_days)
    report = SweepReport()
    with _sweep_lock() as got:
        if not got:
            log.info("monitoring.health: another sweep is running; skipped")
            report.skipped = True
            return report
        with session_scope() as session:
            servers = monitored(session)
        now = utcnow()
        interval = timedelta(seconds=settings.health_dnsbl_interval_seconds)
        with ThreadPoolExecutor(1, thread_name_prefix="health-dnsbl") as pool:
            extra = pool.submit(blocklists, servers, config, now, interval, report)
            with Writer(now, batch_size, report, extra) as writer:
                probe(servers, config, now, report, writer.put, settings.health_probe_processes)
        if writer.error is not None:
            raise writer.error  # after every result is stored: the job is marked failed
        purge(now, retention, report)
    report.seconds = time.perf_counter() - started
    log.info("monitoring.health: %s", report)
    return report
