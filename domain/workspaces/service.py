"""Workspaces: a tenant's unit of fleet, one Pulumi stack each. Every lookup is tenant-scoped, so
another tenant's workspace is simply not found."""

import uuid
from collections.abc import Sequence

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.pagination import paginate
from database.scoping import get_owned
from domain.workspaces.schemas import WorkspaceCreate
from kit.errors import Conflict
from kit.secrets import new_password
from kit.sshkeys import new_keypair


def create(session: Session, tenant_id: uuid.UUID, data: WorkspaceCreate) -> Workspace:
    taken = session.scalar(
        select(exists().where(Workspace.tenant_id == tenant_id, Workspace.name == data.name))
    )
    if taken:
        raise Conflict(f"a workspace named {data.name!r} already exists", field="name")
    workspace_id = uuid.uuid4()
    public, private = new_keypair()
    workspace = Workspace(
        id=workspace_id,
        tenant_id=tenant_id,
        name=data.name,
        sandbox=data.sandbox,
        stack_name=f"ws-{workspace_id.hex}",
        ssh_public_key=public,
        ssh_private_key_encrypted=private,
        stalwart_admin_password_encrypted=new_password(),
    )
    session.add(workspace)
    session.flush()
    return workspace


def get(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, for_update: bool = False
) -> Workspace:
    return get_owned(
        session,
        Workspace,
        tenant_id,
        workspace_id,
        noun="workspace",
        field="workspace_id",
        for_update=for_update,
    )


def list_page(
    session: Session, tenant_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[Workspace], int]:
    where = Workspace.tenant_id == tenant_id
    return paginate(
        session,
        Workspace,
        [where],
        order_by=(Workspace.created_at, Workspace.id),
        limit=limit,
        offset=offset,
    )


def delete(session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID) -> None:
    # Locked: a concurrent create of a server or inbox must not slip in between the check and
    # the delete.
    workspace = lock(session, tenant_id, workspace_id)
    servers = session.scalar(
        select(func.count()).select_from(VpsServer).where(VpsServer.workspace_id == workspace_id)
    )
    inboxes = session.scalar(
        select(func.count()).select_from(Inbox).where(Inbox.workspace_id == workspace_id)
    )
    if servers or inboxes:
        raise Conflict(
            f"workspace still has {servers} server(s) and {inboxes} inbox(es); delete them first",
            servers=servers,
            inboxes=inboxes,
        )
    session.delete(workspace)


def lock(session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID) -> Workspace:
    """The workspace row, locked until commit: changes to one fleet's desired state serialise
    here (placement of inboxes, deletion of servers)."""
    return get(session, tenant_id, workspace_id, for_update=True)


def lock_by_id(session: Session, workspace_id: uuid.UUID) -> Workspace | None:
    """The workspace row locked `FOR NO KEY UPDATE`, for workers and sweeps that act for no
    tenant in particular. The first lock of every transaction that changes a fleet (the lock
    order in CONTRIBUTING.md)."""
    return session.scalars(
        select(Workspace).where(Workspace.id == workspace_id).with_for_update(key_share=True)
    ).first()


def providers(session: Session, workspace: Workspace) -> set[str]:
    """The providers of the workspace's servers (those not being deleted)."""
    rows = session.scalars(
        select(VpsServer.provider)
        .where(VpsServer.workspace_id == workspace.id, VpsServer.tenant_id == workspace.tenant_id)
        .where(or_(VpsServer.status.is_(None), VpsServer.status != "deleting"))
        .distinct()
    ).all()
    return set(rows)


def ssh_fingerprint(public_key: str) -> str:
    """`SHA256:<base64 without padding>` of an OpenSSH public key line (ssh-keygen -l)."""
    import base64
    import hashlib

    blob = base64.b64decode(public_key.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"
