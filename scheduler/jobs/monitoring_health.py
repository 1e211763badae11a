"""`monitoring.health`: probe every monitored server, then store the results.

Named steps with short transactions: read the monitored servers (one read), probe them with no
transaction open, record the results in chunks (each its own transaction; row by row when a
chunk fails), purge old history. A Postgres advisory lock keeps two processes from sweeping at
once (the second one skips). The steps' domain parts are `domain.health.sweep` (which servers,
probe settings, simulated results for sandbox servers) and `domain.health.service`."""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
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
from kit.time import utcnow
from probes import dnsbl
from probes.dnsbl import ZoneAnswer
from probes.runner import probe_many
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


def _record(
    chunk: list[tuple[ServerInfo, list[CheckResult]]], now: datetime, report: SweepReport
) -> list[Event]:
    """One transaction for the chunk; if it fails, server by server, so one bad row is skipped
    and reported (`report.failed_servers`) and never costs the others their results."""
    try:
        return run_in_transaction(lambda session: service.apply_results(session, chunk, now))
    except Exception:
        if len(chunk) == 1:
            log.exception("monitoring.health: results of server %s skipped", chunk[0][0].vps_id)
            report.failed_servers.append(chunk[0][0].vps_id)
            return []
    log.warning("monitoring.health: a chunk of %d failed; writing server by server", len(chunk))
    return [event for item in chunk for event in _record([item], now, report)]


Results = list[tuple[ServerInfo, list[CheckResult]]]


def probe(
    servers: list[Monitored], config: ProbeConfig, now: datetime, report: SweepReport
) -> Results:
    """Probe the live servers (no transaction open); sandbox servers get simulated results.
    In server id order: the order every writer of server rows locks them in."""
    live = [s for s in servers if not s.sandbox]
    # Blocklists are asked by the `blocklists` step, under the budget shared by every worker.
    direct = replace(config, checks=config.checks - {Check.DNSBL})
    probed = asyncio.run(probe_many([s.target for s in live], direct, now)) if live else {}
    results: Results = []
    for s in servers:
        checks = (
            probed[s.target.key]
            if not s.sandbox
            else simulated_results(config.checks, s.simulation)
        )
        results.append((s.info, checks))
        for r in checks:
            report.statuses[r.status.value] = report.statuses.get(r.status.value, 0) + 1
    report.servers, report.probed = len(servers), len(live)
    report.simulated, report.checks = len(servers) - len(live), sum(len(c) for _, c in results)
    return sorted(results, key=lambda item: item[0].vps_id)


async def _ask(config: ProbeConfig, asks: list[tuple[dnsbl.Blocklist, str]]) -> list[ZoneAnswer]:
    resolver = dnsbl.make_resolver(config.dnsbl_nameservers, config.timeout)
    slots = asyncio.Semaphore(max(1, config.concurrency))

    async def one(bl: dnsbl.Blocklist, subject: str) -> ZoneAnswer:
        async with slots:
            return await dnsbl.lookup(resolver, subject, bl, config.dnsbl_dqs_key)

    return list(await asyncio.gather(*(one(bl, subject) for bl, subject in asks)))


def blocklists(
    servers: list[Monitored],
    results: Results,
    config: ProbeConfig,
    now: datetime,
    interval: timedelta,
    report: SweepReport,
) -> Results:
    """The dnsbl check of every live server: its IPv4 and IPv6 on the IP lists (and the domains
    of its inboxes on the domain lists, for the warmup and reputation), each (list, subject)
    asked at most once per interval across all workers (`domain.health.blocklists`), each list
    trusted only while it passes its RFC 5782 test entries."""
    live = [s for s in servers if not s.sandbox]
    if Check.DNSBL not in config.checks or not live:
        return results
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
    answers = asyncio.run(_ask(config, [(asks[p], p[1]) for p in mine])) if mine else []
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
    out: Results = []
    for info, checks in results:
        extra = by_server.get(info.vps_id)
        if extra is not None:
            report.statuses[extra.status.value] = report.statuses.get(extra.status.value, 0) + 1
            report.checks += 1
        out.append((info, [*checks, extra] if extra is not None else checks))
    return out


def record(results: Results, now: datetime, batch_size: int, report: SweepReport) -> None:
    """History, state and alerts, chunk by chunk."""
    for i in range(0, len(results), batch_size):
        recorded = _record(results[i : i + batch_size], now, report)
        report.alerts += sum(e.type == catalogue.HEALTH_ALERT.name for e in recorded)
        report.recoveries += sum(e.type == catalogue.HEALTH_RECOVERED.name for e in recorded)


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
        results = probe(servers, config, now, report)
        interval = timedelta(seconds=settings.health_dnsbl_interval_seconds)
        results = blocklists(servers, results, config, now, interval, report)
        record(results, now, batch_size, report)
        purge(now, retention, report)
    report.seconds = time.perf_counter() - started
    log.info("monitoring.health: %s", report)
    return report
