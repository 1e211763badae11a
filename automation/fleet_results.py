"""What a finished stack run means for the fleet's rows: the seed's provisioning pipeline
(server created and ready, mail server installed, TLS configured, status `ready`, outputs
recorded, DNS records generated), deletions completed, or failure recorded with its reason."""

import logging
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from automation.engine import StackResult
from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.dns_records import service as dns_records
from domain.events import service as events
from stacks import catalog

log = logging.getLogger(__name__)

# Seed pipeline step -> how to recognise its resources among the run's changes.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("create_server", (":Server", "hostwinds", "Rdns", "Firewall", "SshKey")),
    ("install_mail_server", ("install",)),
    ("configure_tls", ("tls", "acme")),
]


def _event(
    session: Session,
    workspace: Workspace,
    type: str,
    message: str,
    subject_type: str,
    subject_id: uuid.UUID,
    data: dict[str, Any] | None = None,
) -> None:
    events.record(
        session,
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        type=type,
        message=message,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
    )


def _steps(result: StackResult) -> list[dict[str, Any]]:
    steps = []
    for step, needles in STEPS:
        names = [
            f"{c.op} {c.type} {c.name}"
            for c in result.changes
            if any(n.lower() in f"{c.type} {c.name}".lower() for n in needles)
        ]
        steps.append({"step": step, "status": "done", "resources": names})
    return steps


def _apply_server(server: VpsServer, out: dict[str, Any]) -> bool:
    server.provider_server_id = str(out["provider_id"]) if out.get("provider_id") else None
    server.ip_address = out.get("ipv4") or server.ip_address
    server.ipv6_address = out.get("ipv6") or server.ipv6_address
    server.hostname = out.get("hostname") or server.hostname
    server.stalwart_version = out.get("stalwart_version") or server.stalwart_version
    if server.specs is None:
        server.specs = catalog.specs(server.provider, server.size, server.region)
    if server.monthly_cost is None:
        server.monthly_cost = catalog.monthly_cost(server.provider, server.size, server.region)
    # Only a server this pipeline was building becomes ready here; once it runs, its status
    # (ready/unreachable) and mail_server_status belong to the health sweep.
    became_ready = server.status in ("provisioning", "failed")
    if became_ready:
        server.status = "ready"
        server.mail_server_status = "running"
        server.status_reason = None
    return became_ready


def apply_success(
    session: Session, workspace: Workspace, op: Operation, result: StackResult
) -> list[dict[str, Any]]:
    server_out: dict[str, Any] = result.outputs.get("servers") or {}
    # The stack config names mailboxes by lower-cased address.
    mailbox_out: dict[str, Any] = {
        address.lower(): out for address, out in (result.outputs.get("mailboxes") or {}).items()
    }
    steps = _steps(result)
    # Lock order: workspace (the caller), operation (the caller), servers, inboxes; rows of
    # one table in id order, so two transactions locking overlapping sets cannot deadlock.
    servers = session.scalars(
        select(VpsServer)
        .where(VpsServer.workspace_id == workspace.id)
        .order_by(VpsServer.id)
        .with_for_update()
    ).all()
    inboxes = session.scalars(
        select(Inbox).where(Inbox.workspace_id == workspace.id).order_by(Inbox.id).with_for_update()
    ).all()

    gone_inboxes = [
        i for i in inboxes if i.status == "deleting" and i.email_address.lower() not in mailbox_out
    ]
    for inbox in gone_inboxes:
        _event(
            session,
            workspace,
            "inbox_deleted",
            f"inbox {inbox.email_address} deleted",
            "inbox",
            inbox.id,
        )
    if gone_inboxes:
        session.execute(delete(Inbox).where(Inbox.id.in_([i.id for i in gone_inboxes])))

    ready: list[VpsServer] = []
    for server in servers:
        if server.status == "deleting":
            if server.name not in server_out:
                _event(
                    session,
                    workspace,
                    "server_deleted",
                    f"server {server.hostname} deleted",
                    "vps",
                    server.id,
                )
                session.delete(server)
            continue
        out = server_out.get(server.name)
        if out is None:
            continue
        became_ready = _apply_server(server, out)
        if became_ready:
            _event(
                session,
                workspace,
                "server_ready",
                f"server {server.hostname} is ready at {server.ip_address}",
                "vps",
                server.id,
                {"operation_id": str(op.id)},
            )
        ready.append(server)

    ready_ids = {s.id for s in ready}
    for inbox in inboxes:
        # Only what this run applied moves: an inbox created while it ran is not in its
        # outputs and waits, untouched, for the run queued for it.
        applied = inbox.email_address.lower() in mailbox_out
        if inbox.status == "deleting" or inbox.vps_id not in ready_ids or not applied:
            continue
        endpoints = mailbox_out[inbox.email_address.lower()] or {}
        inbox.smtp_config = endpoints.get("smtp") or inbox.smtp_config
        inbox.imap_config = endpoints.get("imap") or inbox.imap_config
        if inbox.status == "failed":
            inbox.status = "pending_setup"
    session.flush()
    generated = sum(
        dns_records.generate_for_server(session, server, applied=mailbox_out.keys())
        for server in ready
    )
    steps.append(
        {
            "step": "update_server_status",
            "status": "done",
            "servers_ready": [s.hostname for s in ready],
        }
    )
    steps.append({"step": "dns_generate", "status": "done", "records": generated})
    return steps


def apply_failure(session: Session, workspace: Workspace, op: Operation, reason: str) -> None:
    servers = session.scalars(
        select(VpsServer)
        .where(
            VpsServer.workspace_id == workspace.id,
            VpsServer.status.in_(("provisioning", "failed")),
        )
        .order_by(VpsServer.id)
        .with_for_update()
    ).all()
    for server in servers:
        server.status = "failed"
        server.status_reason = reason[:1000]
    failed_ids = [s.id for s in servers]
    if failed_ids:
        for inbox in session.scalars(
            select(Inbox)
            .where(Inbox.vps_id.in_(failed_ids), Inbox.status == "pending_setup")
            .order_by(Inbox.id)
            .with_for_update()
        ):
            inbox.status = "failed"
    _event(
        session,
        workspace,
        "operation_failed",
        f"{op.kind} of the fleet failed: {reason}"[:1000],
        "operation",
        op.id,
        {"servers_failed": [s.hostname for s in servers]},
    )
