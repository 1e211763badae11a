import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep
from api.schemas import PageOf
from database.session import session_scope
from domain.operations import service
from domain.operations.schemas import OperationRead
from domain.tenants.model import ApiKey
from domain.workspaces import service as workspaces
from settings import get_settings

router = APIRouter(tags=["operations"])


@router.get("/operations/{operation_id}", response_model=OperationRead)
def get_operation(operation_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> OperationRead:
    return OperationRead.of(service.get(session, key.tenant_id, operation_id))


@router.get("/workspaces/{workspace_id}/operations", response_model=PageOf[OperationRead])
def list_operations(
    workspace_id: uuid.UUID,
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    status_filter: Annotated[str | None, Query(alias="status", max_length=16)] = None,
) -> PageOf[OperationRead]:
    workspaces.get(session, key.tenant_id, workspace_id)
    rows, total = service.list_page(
        session,
        key.tenant_id,
        workspace_id,
        limit=page.limit,
        offset=page.offset,
        status=status_filter,
    )
    return PageOf[OperationRead](
        items=[OperationRead.of(o) for o in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/operations/{operation_id}/cancel", response_model=OperationRead)
def cancel_operation(
    operation_id: uuid.UUID, session: SessionDep, key: CurrentKey
) -> OperationRead:
    return OperationRead.of(service.cancel(session, key.tenant_id, operation_id))


@router.post(
    "/operations/{operation_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRead,
    summary="Run a failed operation's stack again; the run resumes where it stopped",
)
def retry_operation(operation_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> OperationRead:
    return OperationRead.of(service.retry(session, key.tenant_id, operation_id))


@router.get(
    "/workspaces/{workspace_id}/preview",
    response_model=OperationRead,
    responses={202: {"model": OperationRead, "description": "Still running: poll the operation"}},
    summary="What an `up` would change, computed by a worker",
)
def preview(
    workspace_id: uuid.UUID,
    key: CurrentKey,
    wait: Annotated[float | None, Query(ge=0, le=60, description="Seconds to wait")] = None,
) -> JSONResponse:
    # Its own short transactions, not the request session: the preview must be committed
    # before a worker can see it, and no transaction may stay open while we wait.
    op_id = _enqueue_preview(key, workspace_id)
    deadline = time.monotonic() + (get_settings().preview_wait_seconds if wait is None else wait)
    while True:
        with session_scope() as session:
            op = service.get(session, key.tenant_id, op_id)
            body = OperationRead.of(op).model_dump(mode="json")
            finished = op.status in service.FINISHED
        if finished or time.monotonic() >= deadline:
            return JSONResponse(body, status_code=200 if finished else 202)
        time.sleep(0.1)


def _enqueue_preview(key: ApiKey, workspace_id: uuid.UUID) -> uuid.UUID:
    with session_scope() as session:
        workspace = workspaces.get(session, key.tenant_id, workspace_id)
        return service.enqueue(session, workspace, "preview", reason="preview requested").id
