"""The desired fleet of a workspace, read from the database into the stack config schema.

Rows marked `status = 'deleting'` (servers and inboxes) are left out: that is how the queue removes
them: the next `up` deletes their resources, and the queue then deletes the rows. Inboxes on a
server being deleted, or on no server yet, are left out too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, undefer

from automation.errors import StackConfigError
from database.models.dns_connections import DnsConnection
from database.models.dns_records import DnsRecord
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from settings import get_settings
from stacks.config import (
    ConfigError,
    DnsConnectionSpec,
    DnsRecordSpec,
    DomainSpec,
    FleetConfig,
    MailboxSpec,
    ServerSpec,
)
from stacks.versions import pin_change_problem

DELETING = "deleting"
# Sandbox fleets need no real credentials; the program still requires a value.
SANDBOX_CREDENTIAL = "sandbox-not-a-credential"


def build_fleet_config(session: Session, workspace: Workspace) -> FleetConfig:
    settings = get_settings()
    scope = (workspace.id, workspace.tenant_id)
    servers = session.scalars(
        select(VpsServer)
        .where(VpsServer.workspace_id == scope[0], VpsServer.tenant_id == scope[1])
        .where(or_(VpsServer.status.is_(None), VpsServer.status != DELETING))
        .order_by(VpsServer.created_at, VpsServer.name)
    ).all()
    names = {s.id: s.name for s in servers}
    domains = session.scalars(
        select(MailDomain)
        .where(MailDomain.workspace_id == scope[0], MailDomain.tenant_id == scope[1])
        .options(undefer(MailDomain.dkim_private_key_encrypted))
        .order_by(MailDomain.name)
    ).all()
    inboxes = session.scalars(
        select(Inbox)
        .where(Inbox.workspace_id == scope[0], Inbox.tenant_id == scope[1])
        .where(or_(Inbox.status.is_(None), Inbox.status != DELETING))
        .options(undefer(Inbox.password_encrypted))
        .order_by(Inbox.email_address)
    ).all()

    connections, records = _dns(session, workspace, domains, {i.id for i in inboxes})

    def credential(value: object, provider: str) -> str | None:
        if any(s.provider == provider for s in servers) and workspace.sandbox:
            return SANDBOX_CREDENTIAL
        secret = getattr(value, "get_secret_value", None)
        return secret() if secret is not None else None

    def pin(server: VpsServer) -> str | None:
        # A server installed with v0.12-v0.15 stays on it when the default moves to v0.16:
        # that move is an offline migration (stacks/versions.py), never an in-place re-install.
        installed = server.stalwart_version
        if installed and pin_change_problem(installed, settings.stalwart_version):
            return installed
        return None

    releases = tuple(v.strip() for v in settings.stalwart_releases.split(",") if v.strip())
    try:
        return FleetConfig(
            workspace_id=str(workspace.id),
            tenant_id=str(workspace.tenant_id),
            servers=tuple(
                ServerSpec(
                    name=s.name,
                    provider=s.provider,
                    size=s.size,
                    region=s.region,
                    hostname=s.hostname.lower().rstrip("."),
                    ip=str(s.ip_address) if s.provider == "existing" and s.ip_address else None,
                    ssh_user=s.ssh_user or "root",
                    ssh_port=s.ssh_port or 22,
                    stalwart_version=pin(s),
                )
                for s in servers
            ),
            domains=tuple(
                DomainSpec(
                    name=d.name.lower(),
                    dkim_selector=d.dkim_selector,
                    dkim_algorithm=d.dkim_algorithm,
                    dkim_public_key=d.dkim_public_key,
                    dkim_private_key=d.dkim_private_key_encrypted,
                )
                for d in domains
            ),
            mailboxes=tuple(
                MailboxSpec(
                    address=i.email_address.lower(),
                    display_name=i.display_name,
                    server=names[i.vps_id],
                    quota_mb=i.quota_mb,
                    password=i.password_encrypted,
                    daily_limit=i.effective_daily_limit,
                )
                for i in inboxes
                if i.vps_id in names and i.password_encrypted
            ),
            stalwart_version=settings.stalwart_version,
            stalwart_releases=releases,
            stalwart_admin_password=workspace.stalwart_admin_password_encrypted,
            ssh_public_key=workspace.ssh_public_key,
            ssh_private_key=workspace.ssh_private_key_encrypted,
            hetzner_token=credential(settings.hetzner_token, "hetzner"),
            hostwinds_api_key=credential(settings.hostwinds_api_key, "hostwinds"),
            dns_connections=connections,
            dns_records=records,
        )
    except ConfigError as exc:
        raise StackConfigError(
            f"workspace {workspace.id} cannot be deployed: {exc}", field=exc.key
        ) from exc


def _dns(
    session: Session,
    workspace: Workspace,
    domains: Sequence[MailDomain],
    live_inboxes: set[uuid.UUID],
) -> tuple[tuple[DnsConnectionSpec, ...], tuple[DnsRecordSpec, ...]]:
    """Every DNS connection of the workspace (a record being removed needs its connection's
    credentials even when nothing uses it any more), and one record per distinct value of the
    records of live inboxes whose domain publishes through a connection."""
    rows = session.scalars(
        select(DnsConnection)
        .where(
            DnsConnection.workspace_id == workspace.id,
            DnsConnection.tenant_id == workspace.tenant_id,
        )
        .order_by(DnsConnection.id)
        .options(undefer(DnsConnection.credentials_encrypted))
    ).all()
    connections = tuple(
        DnsConnectionSpec(
            id=str(c.id),
            kind=c.kind,
            settings=dict(c.settings),
            credentials=json.loads(c.credentials_encrypted or "{}"),
        )
        for c in rows
        if c.kind != "manual"
    )
    publishing = {c.id for c in connections}
    by_name: dict[str, tuple[str, MailDomain]] = {}
    for d in domains:
        applies = d.dns_connection_id or workspace.dns_connection_id
        if applies is not None and str(applies) in publishing:
            by_name[d.name] = (str(applies), d)
    if not by_name or not live_inboxes:
        return connections, ()
    records: dict[str, DnsRecordSpec] = {}
    for r in session.scalars(
        select(DnsRecord)
        .where(DnsRecord.inbox_id.in_(sorted(live_inboxes)), DnsRecord.domain.in_(list(by_name)))
        .order_by(DnsRecord.domain, DnsRecord.purpose, DnsRecord.id)
    ):
        connection_id, domain = by_name[r.domain]
        spec = DnsRecordSpec(
            connection=connection_id,
            domain=r.domain,
            purpose=r.purpose,
            type=r.record_type,
            name=r.record_name,
            value=r.record_value,
            ttl=r.ttl or 3600,
            zone=domain.zone,
            mx_policy=domain.mx_policy,
        )
        records.setdefault(spec.logical_name, spec)
    return connections, tuple(records.values())
