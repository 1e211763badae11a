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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text

from database.models.events import Event
from database.session import get_engine, session_scope
from database.transactions import run_in_transaction
from domain.events import catalogue
from domain.health import service
from domain.health.service import ServerInfo
from domain.health.sweep import Monitored, monitored, probe_config, simulated_results
from kit.time import utcnow
from probes.runner import probe_many
from probes.types import CheckResult, ProbeConfig
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
    probed = asyncio.run(probe_many([s.target for s in live], config, now)) if live else {}
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
        record(probe(servers, config, now, report), now, batch_size, report)
        purge(now, retention, report)
    report.seconds = time.perf_counter() - started
    log.info("monitoring.health: %s", report)
    return report
