"""Optional reputation connectors of a workspace (Google Postmaster Tools v2, Microsoft SNDS):
off by default, credentials write-only and encrypted at rest."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, SessionDep, SettingsDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from domain.reputation import connectors as service
from domain.reputation.schemas import ConnectorPut, ConnectorRead

router = APIRouter(route_class=RetryingRoute, tags=["reputation"])
CONNECTOR = "/workspaces/{workspace_id}/reputation-connectors/{kind}"
Kind = Literal["google_postmaster", "microsoft_snds"]


@router.put(
    CONNECTOR,
    response_model=ConnectorRead,
    summary="Turn on (201) or replace (200) a connector: google_postmaster takes access_token, "
    "microsoft_snds takes key; both are write-only",
)
def put_reputation_connector(
    workspace_id: uuid.UUID,
    kind: Kind,
    body: Annotated[ConnectorPut, Body()],
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        row, created = service.put(session, key.tenant_id, workspace_id, kind, body)
        return (201 if created else 200), service.view(session, row).model_dump(mode="json")

    return respond(session, key, idempotency_key, request, body, produce, settings=settings)


@router.get(CONNECTOR, response_model=ConnectorRead)
def get_reputation_connector(
    workspace_id: uuid.UUID, kind: Kind, session: SessionDep, key: CurrentKey
) -> ConnectorRead:
    return service.view(session, service.get(session, key.tenant_id, workspace_id, kind))


@router.delete(
    CONNECTOR,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn a connector off; its figures stop counting in the score",
)
def delete_reputation_connector(
    workspace_id: uuid.UUID, kind: Kind, session: SessionDep, key: CurrentKey
) -> Response:
    service.delete_connector(session, key.tenant_id, workspace_id, kind)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
