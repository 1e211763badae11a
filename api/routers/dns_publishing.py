"""DNS connections of a workspace, its default connection, and the domains resource."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.dns_publishing import service
from domain.dns_publishing.schemas import (
    DnsConnectionCreate,
    DnsConnectionRead,
    DnsConnectionUpdate,
    DomainRead,
    DomainUpdate,
    WorkspaceDnsUpdate,
)
from domain.workspaces.schemas import WorkspaceRead

router = APIRouter(route_class=RetryingRoute, tags=["dns publishing"])
CONNECTIONS = "/workspaces/{workspace_id}/dns-connections"


@router.post(
    CONNECTIONS,
    status_code=status.HTTP_201_CREATED,
    response_model=DnsConnectionRead,
    summary="Add a DNS connection (rfc2136, lexicon, cloudflare, hetzner or manual); its "
    "credentials are write-only",
)
def create_dns_connection(
    workspace_id: uuid.UUID,
    body: Annotated[DnsConnectionCreate, Body()],
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        connection = service.create_connection(session, key.tenant_id, workspace_id, body)
        return 201, service.view(connection).model_dump(mode="json")

    return respond(session, key, idempotency_key, request, body, produce, settings=settings)


@router.get(CONNECTIONS, response_model=PageOf[DnsConnectionRead])
def list_dns_connections(
    workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey, page: PageDep
) -> PageOf[DnsConnectionRead]:
    rows, total = service.list_connections(
        session, key.tenant_id, workspace_id, limit=page.limit, offset=page.offset
    )
    return PageOf[DnsConnectionRead](
        items=[service.view(c) for c in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get(CONNECTIONS + "/{connection_id}", response_model=DnsConnectionRead)
def get_dns_connection(
    workspace_id: uuid.UUID, connection_id: uuid.UUID, session: SessionDep, key: CurrentKey
) -> DnsConnectionRead:
    return service.view(service.get_connection(session, key.tenant_id, connection_id, workspace_id))


@router.patch(
    CONNECTIONS + "/{connection_id}",
    response_model=DnsConnectionRead,
    summary="Rename, or rotate credentials / change settings; records using it are published again",
)
def update_dns_connection(
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    body: DnsConnectionUpdate,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> DnsConnectionRead:
    connection = service.update_connection(
        session, key.tenant_id, workspace_id, connection_id, body, settings=settings
    )
    return service.view(connection)


@router.delete(
    CONNECTIONS + "/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a connection; 409 while the workspace or a domain uses it",
)
def delete_dns_connection(
    workspace_id: uuid.UUID, connection_id: uuid.UUID, session: SessionDep, key: CurrentKey
) -> Response:
    service.delete_connection(session, key.tenant_id, workspace_id, connection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/workspaces/{workspace_id}",
    response_model=WorkspaceRead,
    summary="Set the workspace's default DNS connection (null: manual)",
)
def update_workspace(
    workspace_id: uuid.UUID,
    body: WorkspaceDnsUpdate,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> WorkspaceRead:
    workspace = service.set_default(session, key.tenant_id, workspace_id, body, settings=settings)
    return WorkspaceRead.model_validate(workspace)


@router.get(
    "/workspaces/{workspace_id}/domains",
    response_model=list[DomainRead],
    summary="Each mail domain with its DNS connection, zone, publish state and verification",
)
def list_domains(workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> list[DomainRead]:
    return service.list_domains(session, key.tenant_id, workspace_id)


@router.patch(
    "/domains/{domain_id}",
    response_model=DomainRead,
    summary="A domain's own DNS connection (null: the workspace's default), zone and MX policy",
)
def update_domain(
    domain_id: uuid.UUID,
    body: DomainUpdate,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> DomainRead:
    return service.update_domain(session, key.tenant_id, domain_id, body, settings=settings)
