"""The fleet's servers: registering desired servers, placing inboxes on them, reading them.
Servers are created and removed by the workspace's stack; rows here are the desired state
(status `provisioning`/`deleting`) and, after a run, its results."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text
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


@dataclass(frozen=True)
class Placement:
    """What an inbox create needs to know before inserting, read in one statement: the
    domain's owner (after making the caller its owner if it had none), whether the workspace
    has the mail domain, and the first server with room (None: a new one is needed)."""

    owner: uuid.UUID | None
    has_domain: bool
    server_id: uuid.UUID | None
    hostname: str | None


# The owner row is inserted if missing and otherwise held FOR SHARE until commit (a claim being
# verified takes it FOR UPDATE; mail_domains.require_owner). Servers need no lock: the caller
# holds the workspace's, which every placement and every fleet change takes first.
_PLACEMENT = text(
    """
WITH new_owner AS (
    INSERT INTO domain_owners (name, tenant_id) VALUES (:domain, :tenant_id)
    ON CONFLICT (name) DO NOTHING RETURNING tenant_id
)
SELECT coalesce(
           (SELECT tenant_id FROM new_owner),
           (SELECT tenant_id FROM domain_owners WHERE name = :domain FOR SHARE)
       ) AS owner,
       EXISTS (SELECT 1 FROM mail_domains WHERE workspace_id = :workspace_id AND name = :domain)
           AS has_domain,
       room.id AS server_id,
       room.hostname
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id, hostname FROM vps_servers
    WHERE workspace_id = :workspace_id AND provider = :provider AND size = :size
      AND status <> 'deleting' AND inbox_count < :room
      AND (CAST(:region AS varchar) IS NULL OR region = CAST(:region AS varchar))
    ORDER BY created_at, id
    LIMIT 1
) AS room ON true
"""
)


def placement(
    session: Session,
    workspace: Workspace,
    tenant_id: uuid.UUID,
    domain: str,
    *,
    provider: str,
    size: str,
    region: str | None,
    settings: OperationSettings,
) -> Placement:
    """The caller holds the workspace row lock (the lock order: workspace, then the owner
    row), so concurrent creates never both pick the last free place or both add a server."""
    row = session.execute(
        _PLACEMENT,
        {
            "domain": domain,
            "tenant_id": tenant_id,
            "workspace_id": workspace.id,
            "provider": provider,
            "size": size,
            "room": settings.inboxes_per_server,
            "region": region,
        },
    ).one()
    return Placement(row.owner, bool(row.has_domain), row.server_id, row.hostname)


def new_server_for_inbox(
    session: Session,
    workspace: Workspace,
    *,
    provider: str,
    size: str,
    region: str | None,
    domain: str,
    settings: OperationSettings,
) -> VpsServer:
    """A new server for an inbox that found no room (`placement`)."""
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
