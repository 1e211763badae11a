"""Operations on one server: restart the mail server (over SSH), read its log (from Stalwart's
management API over HTTPS: v0.16+ `x:Log/query`, v0.12-v0.15 `GET /api/logs`; Stalwart logs to
its own files, so journald holds only systemd's start/stop lines). The command lines are
constants plus `shlex.quote`d settings and integers; nothing from a request reaches a shell as
text. In sandbox workspaces both act on a simulated server and say so."""

import asyncio
import ssl
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.events import catalogue
from domain.events import service as events
from domain.health.schemas import LogsRead, RestartResult
from kit.errors import Conflict, NotFound, Unavailable
from kit.time import utcnow
from probes import ssh, stalwart_api
from probes.net import describe
from probes.types import Target
from settings.health import HealthSettings

NOT_YET = ("provisioning", "installing", "deleting", "deleted")


def server_of_tenant(session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID) -> VpsServer:
    server = session.scalars(
        select(VpsServer).where(VpsServer.id == vps_id, VpsServer.tenant_id == tenant_id)
    ).first()
    if server is None:
        raise NotFound(f"server {vps_id} not found", field="vps_id")
    return server


def _workspace(session: Session, server: VpsServer) -> Workspace:
    workspace = session.get(Workspace, server.workspace_id)
    assert workspace is not None  # foreign key
    return workspace


def _operable(server: VpsServer) -> None:
    if server.status in NOT_YET or server.ip_address is None:
        raise Conflict(
            f"server {server.name} is {server.status}; try again once it is ready",
            field="vps_id",
            status=server.status,
        )


def _target(server: VpsServer, workspace: Workspace) -> ssh.SshTarget:
    if not workspace.ssh_private_key_encrypted:
        raise Conflict("the workspace has no SSH key for its servers", field="vps_id")
    return ssh.SshTarget(
        str(server.ip_address),
        server.ssh_port,
        server.ssh_user,
        workspace.ssh_private_key_encrypted,
        server.ssh_host_key,
    )


def _pin(server: VpsServer, result: ssh.CommandResult) -> ssh.CommandResult:
    """Trust on first use: keep the first host key the server showed."""
    if server.ssh_host_key is None and result.host_key:
        server.ssh_host_key = result.host_key
    return result


def _run(target: ssh.SshTarget, cmd: str, s: HealthSettings) -> ssh.CommandResult:
    return asyncio.run(
        ssh.run(
            target,
            cmd,
            connect_timeout=s.health_ssh_connect_timeout_seconds,
            timeout=s.health_ssh_command_timeout_seconds,
        )
    )


def restart_command(user: str, unit: str) -> str:
    return ssh.privileged(user, ["systemctl", "restart", unit])


def _api_target(server: VpsServer, workspace: Workspace) -> Target:
    if not workspace.stalwart_admin_password_encrypted:
        raise Conflict("the workspace has no Stalwart admin credentials", field="vps_id")
    return Target(
        key=str(server.id),
        address=str(server.ip_address),
        hostname=server.hostname,
        admin_password=workspace.stalwart_admin_password_encrypted,
        stalwart_version=server.stalwart_version,
    )


def _verifying_context(settings: HealthSettings) -> ssl.SSLContext:
    bundle = settings.health_ca_bundle
    ctx = ssl.create_default_context(cafile=str(bundle) if bundle else None)
    ctx.check_hostname = True
    return ctx


def restart(
    session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID, *, settings: HealthSettings
) -> RestartResult:
    """Restart the mail server and record the outcome as an event (also when it failed)."""
    server = server_of_tenant(session, tenant_id, vps_id)
    _operable(server)
    workspace = _workspace(session, server)
    unit = settings.health_stalwart_unit
    if workspace.sandbox:
        outcome, detail = "restarted", f"simulated restart of {unit} (sandbox workspace)"
    else:
        try:
            result = _pin(
                server,
                _run(_target(server, workspace), restart_command(server.ssh_user, unit), settings),
            )
        except ssh.SshError as exc:
            outcome, detail = "failed", str(exc)
        else:
            if result.exit_status == 0:
                outcome, detail = "restarted", f"systemctl restart {unit}: done"
            else:
                tail = (result.stderr or result.stdout).strip()[-500:]
                outcome = "failed"
                detail = f"systemctl restart {unit} exited {result.exit_status}: {tail}"
    event = events.record(
        session,
        tenant_id=server.tenant_id,
        workspace_id=server.workspace_id,
        type=(
            catalogue.MAIL_SERVER_RESTARTED
            if outcome == "restarted"
            else catalogue.MAIL_SERVER_RESTART_FAILED
        ),
        message=f"{server.name}: {detail}"[:1000],
        subject_type="vps",
        subject_id=server.id,
        data={"vps_id": str(server.id), "simulated": workspace.sandbox, "outcome": outcome},
    )
    session.flush()
    return RestartResult(
        vps_id=server.id,
        outcome=outcome,
        simulated=workspace.sandbox,
        detail=detail,
        event_id=event.id,
    )


def logs(
    session: Session,
    tenant_id: uuid.UUID,
    vps_id: uuid.UUID,
    lines: int,
    *,
    settings: HealthSettings,
) -> LogsRead:
    if not 1 <= lines <= 1000:
        raise ValueError("lines must be 1..1000")  # the router validates; this is a backstop
    server = server_of_tenant(session, tenant_id, vps_id)
    _operable(server)
    workspace = _workspace(session, server)
    source = "Stalwart's log"
    if workspace.sandbox:
        return LogsRead(
            vps_id=server.id,
            lines=_simulated_log(server, lines),
            requested=lines,
            simulated=True,
            source=f"simulated {source}",
        )
    target = _api_target(server, workspace)
    try:
        source, text_lines = asyncio.run(
            asyncio.wait_for(
                stalwart_api.logs(
                    target, settings.health_https_port, _verifying_context(settings), lines
                ),
                settings.health_probe_timeout_seconds,
            )
        )
    except ssl.SSLCertVerificationError as exc:
        raise Unavailable(
            f"not sending credentials to {server.name}: {describe(exc)}", field="vps_id"
        ) from exc
    except (OSError, ValueError, ssl.SSLError, stalwart_api.ApiError) as exc:
        raise Unavailable(
            f"cannot read the log of {server.name}: {describe(exc)}", field="vps_id"
        ) from exc
    return LogsRead(
        vps_id=server.id,
        lines=text_lines[-lines:],
        requested=lines,
        simulated=False,
        source=source,
    )


def _simulated_log(server: VpsServer, lines: int) -> list[str]:
    now = utcnow().replace(microsecond=0)
    messages = [
        f"stalwart[1042]: SMTP listener bound to 0.0.0.0:25 ({server.hostname})",
        "stalwart[1042]: IMAP listener bound to 0.0.0.0:993",
        "stalwart[1042]: HTTP listener bound to 0.0.0.0:443",
        "stalwart[1042]: queue: 0 messages scheduled",
    ]
    out = []
    for i in range(min(lines, 20)):
        stamp = now.isoformat().replace("+00:00", "+0000")
        out.append(f"{stamp} {server.name} {messages[i % len(messages)]}")
    return out
