"""What a finished stack run means for the fleet's rows, in named steps that each report what they
really did (`changed` with what, or `unchanged`):

    provider steps    create_server, install_mail_server, configure_tls: the run's resource
                      changes, grouped the way the seed's provisioning pipeline names them
    remove_inboxes    inboxes marked `deleting` whose mailbox the run no longer reports: gone
    remove_servers    servers marked `deleting` that the run no longer reports: gone
    record_servers    outputs copied onto the servers the run reports; the ones being built
                      become `ready`
    attach_mailboxes  endpoints copied onto the inboxes whose mailbox the run reports; only
                      those advance (an inbox created while the run was in flight waits)
    generate_dns      the DNS records of every inbox on a server the run reported
    publish_dns       what the run's DNS record resources said (published, conflict, error)
                      onto the records; records a connection applies to but the run did not
                      carry yet (just generated) become `pending`, and an `up` is queued to
                      publish them

A finished `destroy` (`apply_destroyed`) removes every server and inbox row of the workspace,
whatever its status: the stack holds nothing any more, so none may stay `deleting` forever and
the workspace itself can be deleted.

The input is plain data (`RunOutputs`), not the engine's result type: the domain never imports
the engines. The caller holds the workspace and the operation; rows here are locked in the lock
order (servers, then inboxes, each in id order)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.dns_publishing import service as dns_publishing
from domain.dns_records import generation
from domain.events import catalogue
from domain.events import service as events
from domain.events.catalogue import EventType
from domain.inboxes.states import INBOX, InboxStatus
from domain.operations import service as operations
from domain.servers.states import SERVER, ServerStatus
from kit.time import parse_timestamp
from settings import Settings
from settings.dns import DnsSettings
from stacks import catalog

# Seed pipeline step -> how to recognise its resources among the run's changes.
PROVIDER_STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("create_server", (":Server", "hostwinds", "Rdns", "Firewall", "SshKey")),
    ("install_mail_server", ("install",)),
    ("configure_tls", ("tls", "acme")),
]


@dataclass(frozen=True)
class RunOutputs:
    """A finished run, as plain data: outputs per server (by logical name) and per mailbox (by
    lower-cased address, as the stack config names them), and the resource changes."""

    servers: dict[str, dict[str, Any]]
    mailboxes: dict[str, dict[str, Any]]
    changes: list[dict[str, str]] = field(default_factory=list)
    dns: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, outputs: dict[str, Any], changes: Sequence[dict[str, str]]) -> "RunOutputs":
        mailboxes = {a.lower(): out or {} for a, out in (outputs.get("mailboxes") or {}).items()}
        dns = {k: v for k, v in (outputs.get("dns") or {}).items() if isinstance(v, dict)}
        return cls(dict(outputs.get("servers") or {}), mailboxes, list(changes), dns)


@dataclass(frozen=True)
class FleetHints:
    """What the caller read with its workspace lock (`automation.queue`), so the pipeline
    reads only rows it may change: without rows marked for deletion, a run that reports no
    server changes no server or inbox row; without a DNS connection every record is
    `manual`, so there is nothing to reconcile or publish. The default reads everything."""

    deleting: bool = True
    dns_connected: bool = True


@dataclass
class StepReport:
    step: str
    changed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "status": "changed" if self.changed else "unchanged",
                "items": self.changed}  # fmt: skip


@dataclass
class _Rows:
    servers: list[VpsServer]
    inboxes: list[Inbox]
    ready: list[VpsServer] = field(default_factory=list)


def _event(
    session: Session,
    workspace: Workspace,
    type: EventType,
    message: str,
    subject: tuple[str, uuid.UUID],
    data: dict[str, Any] | None = None,
) -> None:
    events.record(
        session,
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        type=type,
        message=message,
        subject_type=subject[0],
        subject_id=subject[1],
        data=data,
    )


def provider_steps(run: RunOutputs) -> list[StepReport]:
    reports = []
    for step, needles in PROVIDER_STEPS:
        report = StepReport(step)
        for c in run.changes:
            where = f"{c['type']} {c['name']}".lower()
            if any(n.lower() in where for n in needles):
                report.changed.append(f"{c['op']} {c['type']} {c['name']}")
        reports.append(report)
    return reports


def remove_inboxes(
    session: Session, workspace: Workspace, rows: _Rows, run: RunOutputs
) -> StepReport:
    report = StepReport("remove_inboxes")
    gone = [
        i
        for i in rows.inboxes
        if i.status == InboxStatus.DELETING and i.email_address.lower() not in run.mailboxes
    ]
    for inbox in gone:
        _event(session, workspace, catalogue.INBOX_DELETED,
               f"inbox {inbox.email_address} deleted", ("inbox", inbox.id),
               {"email_address": inbox.email_address})  # fmt: skip
        report.changed.append(inbox.email_address)
    if gone:
        session.execute(delete(Inbox).where(Inbox.id.in_([i.id for i in gone])))
        rows.inboxes = [i for i in rows.inboxes if i not in gone]
    return report


def remove_servers(
    session: Session, workspace: Workspace, rows: _Rows, run: RunOutputs
) -> StepReport:
    report = StepReport("remove_servers")
    for server in [s for s in rows.servers if s.status == ServerStatus.DELETING]:
        if server.name in run.servers:
            continue  # still there: marked for deletion while this run was in flight
        _event(session, workspace, catalogue.SERVER_DELETED, f"server {server.hostname} deleted",
               ("vps", server.id))  # fmt: skip
        session.delete(server)
        rows.servers.remove(server)
        report.changed.append(server.hostname)
    return report


def _copy_outputs(server: VpsServer, out: dict[str, Any]) -> None:
    server.provider_server_id = str(out["provider_id"]) if out.get("provider_id") else None
    server.ip_address = out.get("ipv4") or server.ip_address
    server.ipv6_address = out.get("ipv6") or server.ipv6_address
    server.hostname = out.get("hostname") or server.hostname
    server.stalwart_version = out.get("stalwart_version") or server.stalwart_version
    if server.specs is None:
        server.specs = catalog.specs(server.provider, server.size, server.region)
    if server.monthly_cost is None:
        server.monthly_cost = catalog.monthly_cost(server.provider, server.size, server.region)


def record_servers(
    session: Session, workspace: Workspace, op: Operation, rows: _Rows, run: RunOutputs
) -> StepReport:
    report = StepReport("record_servers")
    for server in rows.servers:
        out = run.servers.get(server.name)
        if server.status == ServerStatus.DELETING or out is None:
            continue
        _copy_outputs(server, out)
        rows.ready.append(server)
        # Only a server this pipeline was building becomes ready here; once it runs, its
        # status (ready/unreachable) and mail_server_status belong to the health sweep.
        if server.status in (ServerStatus.PROVISIONING, ServerStatus.FAILED):
            SERVER.move(server, ServerStatus.READY)
            server.mail_server_status, server.status_reason = "running", None
            _event(session, workspace, catalogue.SERVER_READY,
                   f"server {server.hostname} is ready at {server.ip_address}",
                   ("vps", server.id), {"operation_id": str(op.id)})  # fmt: skip
            report.changed.append(server.hostname)
    return report


def attach_mailboxes(rows: _Rows, run: RunOutputs) -> StepReport:
    report = StepReport("attach_mailboxes")
    ready_ids = {s.id for s in rows.ready}
    for inbox in rows.inboxes:
        endpoints = run.mailboxes.get(inbox.email_address.lower())
        if (
            inbox.status == InboxStatus.DELETING
            or inbox.vps_id not in ready_ids
            or endpoints is None
        ):
            continue
        before = (inbox.smtp_config, inbox.imap_config, inbox.status)
        inbox.smtp_config = endpoints.get("smtp") or inbox.smtp_config
        inbox.imap_config = endpoints.get("imap") or inbox.imap_config
        if inbox.status == InboxStatus.FAILED:
            INBOX.move(inbox, InboxStatus.PENDING_SETUP)
        if (inbox.smtp_config, inbox.imap_config, inbox.status) != before:
            report.changed.append(inbox.email_address)
    return report


def generate_dns(
    session: Session, rows: _Rows, run: RunOutputs, settings: DnsSettings
) -> StepReport:
    report = StepReport("generate_dns")
    if not rows.ready:
        return report  # no flush either: the finish then writes its operation once
    session.flush()
    counts = generation.generate_for_servers(
        session, [s.id for s in rows.ready], settings=settings, applied=run.mailboxes.keys()
    )
    for server in rows.ready:
        written = counts[server.id]
        if written:
            report.changed.append(f"{server.hostname}: {written} record(s)")
    return report


PUBLISH_REASON = "publish DNS records"


def publish_dns(
    session: Session,
    workspace: Workspace,
    op: Operation,
    run: RunOutputs,
    settings: Settings,
    hints: FleetHints = FleetHints(),
) -> StepReport:
    report = StepReport("publish_dns")
    outcomes = [
        dns_publishing.Outcome(
            domain=str(o.get("domain", "")),
            purpose=str(o.get("purpose", "")),
            value=str(o.get("value", "")),
            status=str(o.get("status") or "pending"),
            detail=str(o.get("detail") or ""),
            zone=str(o.get("zone") or "") or None,
            published_at=parse_timestamp(o.get("published_at")),
        )
        for o in run.dns.values()
        if o.get("status") in ("published", "conflict", "error", "manual")
    ]
    written = dns_publishing.record_outcomes(session, workspace, outcomes, settings=settings)
    report.changed += written.domains
    for domain, records in written.failed.items():
        what = ", ".join(f"{r['purpose']} {r['status']}" for r in records)
        events.record(
            session,
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            type=catalogue.DNS_PUBLISH_FAILED,
            message=f"could not publish {len(records)} DNS record(s) of {domain}: {what}",
            subject_type="operation",
            subject_id=op.id,
            data={"domain": domain, "records": records},
        )
    if not hints.dns_connected and not outcomes:
        return report  # every record is manual: nothing to reconcile, nothing to publish
    dns_publishing.reconcile(session, workspace)
    # Records generated by this run wait for the next one; a run queued for exactly that
    # which still leaves some unpublished does not queue another (no loop).
    if dns_publishing.unpublished(session, workspace) and op.reason != PUBLISH_REASON:
        operations.enqueue(session, workspace, "up", reason=PUBLISH_REASON, settings=settings)
        report.changed.append("queued an up to publish the new records")
    return report


def apply_success(
    session: Session,
    workspace: Workspace,
    op: Operation,
    run: RunOutputs,
    settings: Settings,
    hints: FleetHints = FleetHints(),
) -> list[dict[str, Any]]:
    """Apply a finished `up`/`refresh` to the fleet's rows; the steps' reports, in order."""
    rows = _Rows([], [])
    if run.servers or hints.deleting:  # otherwise no step below would change a row
        rows = _Rows(*_lock_fleet(session, workspace))
    steps = provider_steps(run)
    steps.append(remove_inboxes(session, workspace, rows, run))
    steps.append(remove_servers(session, workspace, rows, run))
    steps.append(record_servers(session, workspace, op, rows, run))
    steps.append(attach_mailboxes(rows, run))
    steps.append(generate_dns(session, rows, run, settings))
    steps.append(publish_dns(session, workspace, op, run, settings, hints))
    return [s.as_dict() for s in steps]


ROW_STEPS = (
    "remove_inboxes",
    "remove_servers",
    "record_servers",
    "attach_mailboxes",
    "generate_dns",
    "publish_dns",
)


def unchanged_steps(run: RunOutputs) -> list[dict[str, Any]] | None:
    """What `apply_success` reports for a run that changes no row, without a statement: None
    when the run may change rows (it reported servers, whose outputs, mailboxes and records
    are written, or DNS outcomes). Valid only where `FleetHints(deleting=False,
    dns_connected=False)` holds, which the caller checks in the statement that records it."""
    if run.servers or run.dns:
        return None
    return [s.as_dict() for s in provider_steps(run)] + [StepReport(s).as_dict() for s in ROW_STEPS]


def _lock_fleet(session: Session, workspace: Workspace) -> tuple[list[VpsServer], list[Inbox]]:
    """The workspace's servers, then its inboxes, locked in id order (the lock order)."""
    servers = session.scalars(
        select(VpsServer)
        .where(VpsServer.workspace_id == workspace.id)
        .order_by(VpsServer.id)
        .with_for_update()
    ).all()
    inboxes = session.scalars(
        select(Inbox).where(Inbox.workspace_id == workspace.id).order_by(Inbox.id).with_for_update()
    ).all()
    return list(servers), list(inboxes)


def apply_failure(session: Session, workspace: Workspace, op: Operation, reason: str) -> None:
    """The servers being built and the inboxes waiting on them are `failed`, with the reason;
    one `operation.failed` event."""
    servers = session.scalars(
        select(VpsServer)
        .where(
            VpsServer.workspace_id == workspace.id,
            VpsServer.status.in_((ServerStatus.PROVISIONING, ServerStatus.FAILED)),
        )
        .order_by(VpsServer.id)
        .with_for_update()
    ).all()
    for server in servers:
        SERVER.move(server, ServerStatus.FAILED)
        server.status_reason = reason[:1000]
    failed_ids = [s.id for s in servers]
    if failed_ids:
        for inbox in session.scalars(
            select(Inbox)
            .where(Inbox.vps_id.in_(failed_ids), Inbox.status == InboxStatus.PENDING_SETUP)
            .order_by(Inbox.id)
            .with_for_update()
        ):
            INBOX.move(inbox, InboxStatus.FAILED)
    message = f"{op.kind} of the fleet failed: {reason}"[:1000]
    _event(session, workspace, catalogue.OPERATION_FAILED, message, ("operation", op.id),
           {"servers_failed": [s.hostname for s in servers]})  # fmt: skip


def apply_destroyed(session: Session, workspace: Workspace) -> list[dict[str, Any]]:
    """Every inbox and server of the workspace is gone with its stack's resources."""
    inboxes_report, servers_report = StepReport("remove_inboxes"), StepReport("remove_servers")
    servers = session.scalars(
        select(VpsServer)
        .where(VpsServer.workspace_id == workspace.id)
        .order_by(VpsServer.id)
        .with_for_update()
    ).all()
    inboxes = session.scalars(
        select(Inbox).where(Inbox.workspace_id == workspace.id).order_by(Inbox.id).with_for_update()
    ).all()
    for inbox in inboxes:
        _event(session, workspace, catalogue.INBOX_DELETED,
               f"inbox {inbox.email_address} deleted (stack destroyed)", ("inbox", inbox.id),
               {"email_address": inbox.email_address})  # fmt: skip
        inboxes_report.changed.append(inbox.email_address)
    if inboxes:
        session.execute(delete(Inbox).where(Inbox.id.in_([i.id for i in inboxes])))
    for server in servers:
        message = f"server {server.hostname} deleted (stack destroyed)"
        _event(session, workspace, catalogue.SERVER_DELETED, message, ("vps", server.id))
        session.delete(server)
        servers_report.changed.append(server.hostname)
    session.flush()
    return [inboxes_report.as_dict(), servers_report.as_dict()]
