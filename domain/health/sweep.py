"""The `monitoring.health` job: probe every monitored server, then store the results.

Set-based with short transactions: one read of the servers, the probes with no transaction open,
then the results in batches, each its own transaction. A Postgres advisory lock keeps two
processes from sweeping at once (the second one skips). Servers of sandbox workspaces have
made-up addresses: they are never probed over the network; they get simulated results that
say so."""

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Load, Session

from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.health.service import MONITORED_STATUSES, ServerInfo
from probes.types import (
    Check,
    CheckResult,
    ProbeConfig,
    Status,
    Target,
    Thresholds,
    nameservers,
)
from settings import Settings

log = logging.getLogger(__name__)

LOCK_KEY = 0x5045_4E47_4845_414C  # "PENGHEAL": one sweep at a time across processes
SIMULATED = "simulated (sandbox workspace): not probed over the network"


def probe_config(s: Settings) -> ProbeConfig:
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
        dnsbl_domain_zones=tuple(
            z.strip() for z in s.health_dnsbl_domain_zones.split(",") if z.strip()
        ),
        dnsbl_nameservers=nameservers(s.health_dnsbl_nameservers or s.dns_nameservers),
        dnsbl_dqs_key=(
            s.health_dnsbl_dqs_key.get_secret_value() if s.health_dnsbl_dqs_key else None
        ),
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
class Monitored:
    info: ServerInfo
    sandbox: bool
    target: Target
    simulation: dict[str, Any] = field(default_factory=dict)  # sandbox: the simulated checks


def monitored(session: Session) -> list[Monitored]:
    rows = session.execute(
        select(VpsServer, Workspace)
        .join(Workspace, Workspace.id == VpsServer.workspace_id)
        .options(Load(Workspace).undefer_group("secrets"))
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
            ipv6=str(server.ipv6_address) if server.ipv6_address else None,
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
            stalwart_version=server.stalwart_version,
        )
        simulation = (server.simulated_health or {}) if workspace.sandbox else {}
        out.append(Monitored(info, workspace.sandbox, target, simulation))
    return out


def simulated_results(
    checks: frozenset[Check], simulation: dict[str, Any] | None = None
) -> list[CheckResult]:
    """A sandbox server's results: "ok", except the checks `POST /vps/{id}/simulate` set."""
    simulation = simulation or {}
    results = []
    for check in Check:
        if check not in checks:
            continue
        set_ = simulation.get(check.value)
        if set_ is None:
            results.append(CheckResult(check, Status.OK, SIMULATED, data={"simulated": True}))
        else:
            detail = set_.get("detail") or f"simulated {set_['status']} (set through the API)"
            results.append(
                CheckResult(check, Status(set_["status"]), detail, data={"simulated": True})
            )
    return results
