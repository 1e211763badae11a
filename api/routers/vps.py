import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from database.models.servers import VpsServer
from domain.health import service as health
from domain.operations import service as operations
from domain.servers import service
from domain.servers.schemas import VpsCreate, VpsRead
from domain.workspaces import service as workspaces

router = APIRouter(route_class=RetryingRoute, tags=["vps"])


def _read(
    session: Session,
    server: VpsServer,
    engine: str,
    counts: dict[uuid.UUID, int] | None = None,
    with_health: bool = False,
) -> VpsRead:
    counts = counts if counts is not None else service.inbox_counts(session, [server.id])
    read = VpsRead.model_validate(server)
    read.engine = engine
    read.inbox_count = counts.get(server.id, 0)
    if with_health:
        read.health = list(health.latest_for_server(session, server.id))
    return read


def _engine_of(session: Session, server: VpsServer) -> str:
    return workspaces.get(session, server.tenant_id, server.workspace_id).engine


class VpsAccepted(VpsRead):
    operation_id: uuid.UUID


@router.post(
    "/workspaces/{workspace_id}/vps",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VpsAccepted,
    summary="Add a server to the workspace's fleet",
)
def create_vps(
    workspace_id: uuid.UUID,
    body: VpsCreate,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        workspace = workspaces.lock(session, key.tenant_id, workspace_id)
        server = service.create(session, workspace, body, settings=settings)
        op = operations.enqueue(
            session, workspace, "up", reason=f"add server {server.hostname}", settings=settings
        )
        read = _read(session, server, workspace.engine, {})
        return 202, VpsAccepted(**read.model_dump(), operation_id=op.id).model_dump(mode="json")

    return respond(session, key, idempotency_key, request, body, produce)


@router.get("/workspaces/{workspace_id}/vps", response_model=PageOf[VpsRead])
def list_vps(
    workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey, page: PageDep
) -> PageOf[VpsRead]:
    workspace = workspaces.get(session, key.tenant_id, workspace_id)
    rows, total = service.list_page(
        session, key.tenant_id, workspace_id, limit=page.limit, offset=page.offset
    )
    counts = service.inbox_counts(session, [s.id for s in rows])
    return PageOf[VpsRead](
        items=[_read(session, s, workspace.engine, counts) for s in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/vps/{vps_id}", response_model=VpsRead)
def get_vps(vps_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> VpsRead:
    server = service.get(session, key.tenant_id, vps_id)
    return _read(session, server, _engine_of(session, server), with_health=True)


@router.delete("/vps/{vps_id}", status_code=status.HTTP_202_ACCEPTED, response_model=VpsAccepted)
def delete_vps(
    vps_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> JSONResponse:
    server = service.mark_for_deletion(session, key.tenant_id, vps_id)
    workspace = workspaces.get(session, key.tenant_id, server.workspace_id)
    op = operations.enqueue(
        session, workspace, "up", reason=f"remove server {server.hostname}", settings=settings
    )
    read = _read(session, server, workspace.engine)
    return JSONResponse(
        VpsAccepted(**read.model_dump(), operation_id=op.id).model_dump(mode="json"),
        status_code=202,
    )
