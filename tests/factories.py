"""Factory functions: each builds a valid object with overridable fields and flushes it."""

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from domain.tenants import service as tenants
from domain.tenants.model import Tenant
from domain.workspaces import service as workspaces
from domain.workspaces.model import Workspace
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
