"""The `monitoring.health` job: probe every monitored server, then store the results.

Set-based with short transactions: one read of the servers, the probes with no transaction open,
then the results in batches, each its own transaction. A Postgres advisory lock keeps two
processes from sweeping at once (the second one skips). Servers of sandbox workspaces have
made-up addresses: they are never probed over the network; they get simulated results that
say so."""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.session import get_engine, session_scope
from database.transactions import run_in_transaction
from domain.health import service
from domain.health.service import MONITORED_STATUSES, ServerInfo
from kit.time import utcnow
from probes.runner import probe_many
from probes.types import (
    Check,
    CheckResult,
    ProbeConfig,
    Status,
    Target,
    Thresholds,
    nameservers,
)
from settings import Settings, get_settings

log = logging.getLogger(__name__)

LOCK_KEY = 0x5045_4E47_4845_414C  # "PENGHEAL": one sweep at a time across processes
SIMULATED = "simulated (sandbox workspace): not probed over the network"


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


def probe_config(settings: Settings | None = None) -> ProbeConfig:
    s = settings or get_settings()
    return ProbeConfig(
        smtp_port=s.health_smtp_port,
        submissions_port=s.health_submissions_port,
        imaps_port=s.health_imaps_port,
        https_port=s.health_https_port,
        ca_bundle=s.health_ca_bundle,
        timeout=s.health_probe_timeout_seconds,
        concurrency=s.health_concurrency,
        ssh_connect_timeout=s.health_ssh_connect_timeout_seconds,
        disk_path=s.health_disk_path,
        queue_page_size=s.health_queue_page_size,
        dnsbl_zones=tuple(z.strip() for z in s.health_dnsbl_zones.split(",") if z.strip()),
        dnsbl_nameservers=nameservers(s.health_dnsbl_nameservers or s.dns_nameservers),
        hetzner_api_url=s.health_hetzner_api_url,
        hetzner_token=s.hetzner_token.get_secret_value() if s.hetzner_token else None,
        thresholds=Thresholds(
            tls_warning_days=s.health_tls_warning_days,
            tls_critical_days=s.health_tls_critical_days,
            disk_warning_free_percent=s.health_disk_warning_free_percent,
            disk_critical_free_percent=s.health_disk_critical_free_percent,
            queue_warning_size=s.health_queue_warning_size,
            queue_critical_size=s.health_queue_critical_size,
            queue_warning_age_seconds=s.health_queue_warning_age_seconds,
            queue_critical_age_seconds=s.health_queue_critical_age_seconds,
        ),
    )


@dataclass(frozen=True)
class _Monitored:
    info: ServerInfo
    sandbox: bool
    target: Target


def _monitored(session: Session) -> list[_Monitored]:
    rows = session.execute(
        select(VpsServer, Workspace)
        .join(Workspace, Workspace.id == VpsServer.workspace_id)
        .where(
            VpsServer.monitoring_enabled.is_not(False),
            VpsServer.ip_address.is_not(None),
            VpsServer.status.in_(MONITORED_STATUSES),
        )
        .order_by(VpsServer.id)
    ).all()
    out = []
    for server, workspace in rows:
        info = ServerInfo(
            server.id, server.tenant_id, server.workspace_id, server.name, server.hostname
        )
        target = Target(
            key=str(server.id),
            address=str(server.ip_address),
            hostname=server.hostname,
            ssh_port=server.ssh_port,
            ssh_user=server.ssh_user,
            ssh_private_key=None if workspace.sandbox else workspace.ssh_private_key_encrypted,
            ssh_host_key=server.ssh_host_key,
            provider=server.provider,
            provider_server_id=None if workspace.sandbox else server.provider_server_id,
            admin_password=(
                None if workspace.sandbox else workspace.stalwart_admin_password_encrypted
            ),
        )
        out.append(_Monitored(info, workspace.sandbox, target))
    return out


def simulated_results(checks: frozenset[Check]) -> list[CheckResult]:
    return [
        CheckResult(c, Status.OK, SIMULATED, data={"simulated": True}) for c in Check if c in checks
    ]


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


def run(
    config: ProbeConfig | None = None,
    *,
    batch_size: int = 200,
    retention: timedelta | None = None,
) -> SweepReport:
    started = time.perf_counter()
    config = config or probe_config()
    retention = retention or timedelta(days=get_settings().health_retention_days)
    report = SweepReport()
    with _sweep_lock() as got:
        if not got:
            log.info("monitoring.health: another sweep is running; skipped")
            report.skipped = True
            return report
        with session_scope() as session:
            servers = _monitored(session)
        now = utcnow()
        live = [s for s in servers if not s.sandbox]
        probed = asyncio.run(probe_many([s.target for s in live], config, now)) if live else {}
        batch: list[tuple[ServerInfo, list[CheckResult]]] = []
        for s in servers:
            results = probed[s.target.key] if not s.sandbox else simulated_results(config.checks)
            batch.append((s.info, results))
            for r in results:
                report.statuses[r.status.value] = report.statuses.get(r.status.value, 0) + 1
        # In server id order: the order every writer of server rows locks them in.
        batch.sort(key=lambda item: item[0].vps_id)
        for i in range(0, len(batch), batch_size):
            recorded = _record(batch[i : i + batch_size], now, report)
            report.alerts += sum(e.type == "health.alert" for e in recorded)
            report.recoveries += sum(e.type == "health.recovered" for e in recorded)
        while True:
            with session_scope() as session:
                purged = service.purge_history(session, now, retention)
            report.purged += purged
            if purged < 10000:
                break
    report.servers = len(servers)
    report.probed = len(live)
    report.simulated = len(servers) - len(live)
    report.checks = sum(len(r) for _, r in batch)
    report.seconds = time.perf_counter() - started
    log.info("monitoring.health: %s", report)
    return report


def job() -> SweepReport:
    return run()
