"""The desired fleet of a workspace, read from the database into the stack config schema.

Rows marked `status = 'deleting'` (servers and inboxes) are left out: that is how the queue removes
them: the next `up` deletes their resources, and the queue then deletes the rows. Inboxes on a
server being deleted, or on no server yet, are left out too."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from automation.errors import StackConfigError
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from settings import get_settings
from stacks.config import ConfigError, DomainSpec, FleetConfig, MailboxSpec, ServerSpec

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
        .order_by(MailDomain.name)
    ).all()
    inboxes = session.scalars(
        select(Inbox)
        .where(Inbox.workspace_id == scope[0], Inbox.tenant_id == scope[1])
        .where(or_(Inbox.status.is_(None), Inbox.status != DELETING))
        .order_by(Inbox.email_address)
    ).all()

    def credential(value: object, provider: str) -> str | None:
        if any(s.provider == provider for s in servers) and workspace.sandbox:
            return SANDBOX_CREDENTIAL
        secret = getattr(value, "get_secret_value", None)
        return secret() if secret is not None else None

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
            stalwart_admin_password=workspace.stalwart_admin_password_encrypted,
            ssh_public_key=workspace.ssh_public_key,
            ssh_private_key=workspace.ssh_private_key_encrypted,
            hetzner_token=credential(settings.hetzner_token, "hetzner"),
            hostwinds_api_key=credential(settings.hostwinds_api_key, "hostwinds"),
        )
    except ConfigError as exc:
        raise StackConfigError(
            f"workspace {workspace.id} cannot be deployed: {exc}", field=exc.key
        ) from exc
