import asyncio
import time
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep, TransactionDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.operations import service
from domain.operations.schemas import OperationRead
from domain.operations.states import FINISHED
from domain.workspaces import service as workspaces

router = APIRouter(route_class=RetryingRoute, tags=["operations"])


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
def retry_operation(
    operation_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> OperationRead:
    return OperationRead.of(service.retry(session, key.tenant_id, operation_id, settings=settings))


def _queue(
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    request: Request,
    idempotency_key: str | None,
    workspace_id: uuid.UUID,
    kind: Literal["destroy", "refresh"],
) -> JSONResponse:
    """Queue a whole-stack operation of the caller's workspace (idempotent on the key)."""

    def produce() -> tuple[int, dict[str, object]]:
        workspace = workspaces.lock(session, key.tenant_id, workspace_id)
        op = service.enqueue(session, workspace, kind, reason=f"{kind} requested",
                             settings=settings)  # fmt: skip
        return 202, OperationRead.of(op).model_dump(mode="json")

    return respond(session, key, idempotency_key, request, None, produce, settings=settings)


@router.post(
    "/workspaces/{workspace_id}/destroy",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRead,
    summary="Destroy every resource of the workspace's stack (a failed live workspace too)",
)
def destroy(
    workspace_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Queues a `destroy`; once it succeeds the workspace's servers and inboxes are gone (rows
    included, whatever their status) and `DELETE /workspaces/{id}` succeeds."""

    return _queue(session, key, settings, request, idempotency_key, workspace_id, "destroy")


@router.post(
    "/workspaces/{workspace_id}/refresh",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OperationRead,
    summary="Read the stack's resources as they really are; the next `up` then runs in full",
)
def refresh(
    workspace_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    """Queues a `refresh`: how drift is looked for. An `up` whose config and program are
    unchanged since the last successful one is skipped; after a refresh it runs
    (docs/stacks.md, "Unchanged stacks are skipped")."""

    return _queue(session, key, settings, request, idempotency_key, workspace_id, "refresh")


@router.get(
    "/workspaces/{workspace_id}/preview",
    response_model=OperationRead,
    responses={202: {"model": OperationRead, "description": "Still running: poll the operation"}},
    summary="What an `up` would change, computed by a worker",
)
async def preview(
    workspace_id: uuid.UUID,
    key: CurrentKey,
    transaction: TransactionDep,
    settings: SettingsDep,
    wait: Annotated[float | None, Query(ge=0, le=60, description="Seconds to wait")] = None,
) -> JSONResponse:
    # Async, and short transactions of its own: the wait holds no thread, no connection and no
    # lock, so any number of waiting previews cannot starve other requests. A preview not yet
    # started is reused, so polling clients add no work.
    tenant_id = key.tenant_id

    def enqueue(session: Session) -> uuid.UUID:
        workspace = workspaces.get(session, tenant_id, workspace_id)
        return service.enqueue(
            session, workspace, "preview", reason="preview requested", settings=settings
        ).id

    def read(session: Session) -> tuple[dict[str, Any], bool]:
        op = service.get(session, tenant_id, op_id)
        return OperationRead.of(op).model_dump(mode="json"), op.status in FINISHED

    op_id = await run_in_threadpool(transaction, enqueue)
    deadline = time.monotonic() + (settings.preview_wait_seconds if wait is None else wait)
    while True:
        body, finished = await run_in_threadpool(transaction, read)
        if finished or time.monotonic() >= deadline:
            return JSONResponse(body, status_code=200 if finished else 202)
        await asyncio.sleep(0.2)
