"""One operation: its resource changes and its log, refreshed while it runs; cancel, retry."""

import uuid

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep, SettingsDep
from console.web import ConsoleRoute, Form, SignedIn, redirect, render
from domain.operations import service as operations
from domain.operations.schemas import OperationRead
from domain.operations.states import FINISHED
from domain.workspaces import service as workspaces

router = APIRouter(route_class=ConsoleRoute, prefix="/console/operations", include_in_schema=False)


@router.get("/{operation_id}")
def operation_page(
    operation_id: uuid.UUID, request: Request, session: SessionDep, who: SignedIn
) -> Response:
    op = operations.get(session, who.tenant_id, operation_id)
    workspace = workspaces.get(session, who.tenant_id, op.workspace_id)
    context = {
        "op": OperationRead.of(op, tail=200),
        "workspace": workspace,
        "finished": op.status in FINISHED,
    }
    return render(request, "operation.html", context)


@router.post("/{operation_id}/cancel")
def cancel(operation_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn) -> Response:
    operations.cancel(session, who.tenant_id, operation_id)
    return redirect(f"/console/operations/{operation_id}")


@router.post("/{operation_id}/retry")
def retry(
    operation_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    op = operations.retry(session, who.tenant_id, operation_id, settings=settings)
    return redirect(f"/console/operations/{op.id}")
