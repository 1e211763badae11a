"""The fleet's servers: registering desired servers, placing inboxes on them, reading them.
Servers are created and removed by the workspace's stack; rows here are the desired state
(status `provisioning`/`deleting`) and, after a run, its results."""

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.pagination import paginate
from database.scoping import get_owned
from domain.servers.schemas import VpsCreate, server_address_problem
from domain.servers.states import SERVER, ServerStatus
from domain.workspaces import service as workspaces
from kit.errors import Conflict, ValidationFailed
from settings import Settings
from settings.operations import OperationSettings
from stacks import catalog

LIVE_INBOX = Inbox.status != "deleting"


def _check_offer(provider: str, size: str, region: str, field_prefix: str) -> None:
    """Each value may be valid alone and the combination still not sold (a size missing in a
    provider's region): a 422 naming the field at fault."""
    try:
        catalog.validate(provider, size, region)
    except catalog.CatalogError as exc:
        raise ValidationFailed(str(exc), field=f"{field_prefix}{exc.key}") from exc


def _new(
    workspace: Workspace,
    *,
    provider: str,
    size: str,
    region: str,
    hostname: str | None,
    hostname_domain: str,
    field_prefix: str = "",
) -> VpsServer:
    _check_offer(provider, size, region, field_prefix)
    server_id = uuid.uuid4()
    name = f"srv-{server_id.hex[:10]}"
    return VpsServer(
        id=server_id,
        tenant_id=workspace.tenant_id,
        workspace_id=workspace.id,
        name=name,
        provider=provider,
        size=size,
        region=region,
        hostname=hostname or f"mail-{server_id.hex[:10]}.{hostname_domain}",
        status=ServerStatus.PROVISIONING.value,
        mail_server_status="not_configured",
        specs=catalog.specs(provider, size, region),
        monthly_cost=catalog.monthly_cost(provider, size, region),
    )


def _hostname_unused(session: Session, workspace: Workspace, hostname: str) -> None:
    """The stack refuses two servers with one hostname (stacks.config.validate_servers), so an
    accepted second one would fail every later run of the workspace: refuse it here. A server
    being deleted still counts until its row is gone (its records and PTR still name it)."""
    taken = session.scalar(
        select(VpsServer.id).where(
            VpsServer.workspace_id == workspace.id,
            func.lower(VpsServer.hostname) == hostname.lower(),
        )
    )
    if taken is not None:
        raise Conflict(
            f"hostname {hostname} is used by another server of this workspace", field="hostname"
        )


def create(
    session: Session, workspace: Workspace, data: VpsCreate, *, settings: Settings
) -> VpsServer:
    if data.ip_address is not None:
        problem = server_address_problem(
            data.ip_address, allow_private=settings.allow_private_server_addresses
        )
        if problem is not None:
            raise ValidationFailed(
                f"{problem}; an existing server needs its public address", field="ip_address"
            )
    if data.provider == "existing" and data.ip_address is None:
        raise ValidationFailed("ip_address is required for provider 'existing'", field="ip_address")
    if data.provider != "existing" and data.ip_address is not None:
        raise ValidationFailed(
            "ip_address is only accepted for provider 'existing'", field="ip_address"
        )
    if data.hostname is not None:
        _hostname_unused(session, workspace, data.hostname)
    server = _new(
        workspace,
        provider=data.provider,
        size=data.size,
        region=data.region,
        hostname=data.hostname,
        hostname_domain=settings.server_hostname_domain,
    )
    if data.provider == "existing":
        server.ip_address = str(data.ip_address)
        server.ssh_user = data.ssh_user
        server.ssh_port = data.ssh_port
    session.add(server)
    session.flush()
    return server


def place_inbox(
    session: Session,
    workspace: Workspace,
    *,
    provider: str,
    size: str,
    region: str | None,
    domain: str,
    settings: OperationSettings,
) -> VpsServer:
    """A server of this workspace with the same provider and size that has room, else a new one.
    The caller holds the workspace row lock, so concurrent creates never both add a server."""
    limit = settings.inboxes_per_server
    used = (
        select(Inbox.vps_id, func.count().label("n"))
        .where(LIVE_INBOX, Inbox.workspace_id == workspace.id)
        .group_by(Inbox.vps_id)
        .subquery()
    )
    stmt = (
        select(VpsServer)
        .outerjoin(used, used.c.vps_id == VpsServer.id)
        .where(
            VpsServer.workspace_id == workspace.id,
            VpsServer.provider == provider,
            VpsServer.size == size,
            VpsServer.status != "deleting",
            func.coalesce(used.c.n, 0) < limit,
        )
        .order_by(VpsServer.created_at, VpsServer.id)
    )
    if region is not None:
        stmt = stmt.where(VpsServer.region == region)
    server = session.scalars(stmt).first()
    if server is not None:
        return server
    if provider == "existing":
        raise ValidationFailed(
            "no registered existing server with room in this workspace; add one with "
            "POST /workspaces/{id}/vps first",
            field="vps_provider",
        )
    server = _new(
        workspace,
        provider=provider,
        size=size,
        region=region or settings.default_region,
        hostname=None,
        hostname_domain=domain,
        field_prefix="vps_",
    )
    session.add(server)
    session.flush()
    return server


def get(session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID) -> VpsServer:
    return get_owned(session, VpsServer, tenant_id, vps_id, noun="server", field="vps_id")


def inbox_counts(session: Session, server_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not server_ids:
        return {}
    rows = session.execute(
        select(Inbox.vps_id, func.count())
        .where(Inbox.vps_id.in_(server_ids), LIVE_INBOX)
        .group_by(Inbox.vps_id)
    ).all()
    return {vps_id: n for vps_id, n in rows if vps_id is not None}


def list_page(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[VpsServer], int]:
    where = [VpsServer.tenant_id == tenant_id, VpsServer.workspace_id == workspace_id]
    return paginate(
        session,
        VpsServer,
        where,
        order_by=(VpsServer.created_at, VpsServer.id),
        limit=limit,
        offset=offset,
    )


def mark_for_deletion(session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID) -> VpsServer:
    server = get(session, tenant_id, vps_id)
    workspaces.lock(session, tenant_id, server.workspace_id)
    living = session.scalar(
        select(func.count()).select_from(Inbox).where(Inbox.vps_id == vps_id, LIVE_INBOX)
    )
    if living:
        raise Conflict(
            f"{living} inbox(es) still live on this server; delete them first", inboxes=living
        )
    SERVER.move(server, ServerStatus.DELETING)
    return server
