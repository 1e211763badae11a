"""Factory functions: each builds a valid object with overridable fields and flushes it."""

import base64
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.tenants import Tenant
from database.models.workspaces import Workspace
from domain.tenants import service as tenants
from domain.workspaces import service as workspaces
from domain.workspaces.schemas import WorkspaceCreate


@dataclass
class TenantWithKey:
    tenant: Tenant
    api_key: str

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def create_tenant(session: Session, name: str | None = None) -> TenantWithKey:
    tenant = tenants.create_tenant(session, name or f"tenant-{uuid.uuid4().hex[:8]}")
    issued = tenants.issue_key(session, tenant)
    return TenantWithKey(tenant=tenant, api_key=issued.plaintext)


def create_workspace(
    session: Session, tenant: Tenant | TenantWithKey, name: str | None = None, sandbox: bool = True
) -> Workspace:
    tenant_id = tenant.id
    return workspaces.create(
        session,
        tenant_id,
        WorkspaceCreate(name=name or f"ws-{uuid.uuid4().hex[:8]}", sandbox=sandbox),
    )


def create_server(
    session: Session,
    workspace: Workspace,
    *,
    name: str | None = None,
    provider: str = "hetzner",
    size: str = "starter",
    region: str = "eu-central",
    hostname: str | None = None,
    ip_address: str | None = "192.0.2.10",
    status: str = "ready",
    mail_server_status: str = "running",
) -> VpsServer:
    name = name or f"mx-{uuid.uuid4().hex[:6]}"
    server = VpsServer(
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        name=name,
        provider=provider,
        size=size,
        region=region,
        hostname=hostname or f"{name}.mail.example.net",
        ip_address=ip_address,
        status=status,
        mail_server_status=mail_server_status,
    )
    session.add(server)
    session.flush()
    return server


def _rsa_keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode(), private


def create_mail_domain(
    session: Session, workspace: Workspace, name: str = "example.com", selector: str = "pm1"
) -> MailDomain:
    public, private = _rsa_keypair()
    domain = MailDomain(
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        name=name,
        dkim_selector=selector,
        dkim_algorithm="rsa",
        dkim_public_key=public,
        dkim_private_key_encrypted=private,
    )
    session.add(domain)
    session.flush()
    return domain


def create_inbox(
    session: Session,
    workspace: Workspace,
    *,
    email_address: str | None = None,
    server: VpsServer | None = None,
    status: str = "pending_setup",
) -> Inbox:
    inbox = Inbox(
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        email_address=email_address or f"user-{uuid.uuid4().hex[:8]}@example.com",
        display_name="Test Inbox",
        vps_id=server.id if server else None,
        status=status,
        password_encrypted="correct-horse-battery-staple",
    )
    session.add(inbox)
    session.flush()
    return inbox
