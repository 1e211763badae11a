"""Overview, a workspace (fleet, inboxes, domains, pending changes), and the create forms for a
workspace, a server and an inbox. Each handler calls the services the API's handlers call."""

import uuid
from collections.abc import Mapping

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from console.web import ConsoleRoute, Form, SignedIn, field_errors, page_of, redirect, render
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.health import service as health
from domain.inboxes import service as inboxes
from domain.inboxes.schemas import InboxAccepted, InboxCreate, InboxRead
from domain.operations import service as operations
from domain.operations.schemas import OperationRead
from domain.overview import service as overview
from domain.servers import service as servers
from domain.servers.schemas import VpsCreate
from domain.workspaces import service as workspaces
from domain.workspaces.schemas import WorkspaceCreate
from kit.errors import PenguinMailsError
from settings import Settings
from stacks.catalog import PROVIDERS, REGIONS, SIZES

router = APIRouter(route_class=ConsoleRoute, prefix="/console", include_in_schema=False)


@router.get("")
def overview_page(
    request: Request, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    size = settings.console_page_size
    number, offset = page_of(request.query_params, size)
    rows, total = workspaces.list_page(session, who.tenant_id, limit=size, offset=offset)
    counts = overview.workspace_counts(session, who.tenant_id, [w.id for w in rows])
    context = {"workspaces": rows, "counts": counts, "total": total, "page": number, "size": size}
    return render(request, "overview.html", context)


@router.get("/workspaces/new")
def new_workspace_page(request: Request, who: SignedIn) -> Response:
    return render(request, "workspace_new.html", {"values": {"sandbox": "on"}})


@router.post("/workspaces")
def create_workspace(request: Request, form: Form, session: SessionDep, who: SignedIn) -> Response:
    data = {"name": form.get("name", ""), "sandbox": form.get("sandbox") == "on"}
    try:
        with session.begin_nested():  # a refusal undoes only what this form did
            workspace = workspaces.create(
                session, who.tenant_id, WorkspaceCreate.model_validate(data)
            )
    except (ValidationError, PenguinMailsError) as exc:
        context = {"values": form, "errors": field_errors(exc)}
        return render(request, "workspace_new.html", context, status_code=422)
    return redirect(f"/console/workspaces/{workspace.id}")


def _pages(total: int, size: int) -> int:
    return max(1, -(-total // size))


@router.get("/workspaces/{workspace_id}")
def workspace_page(
    workspace_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    size = settings.console_page_size
    params = request.query_params
    server_page, server_offset = page_of({"page": params.get("servers", "1")}, size)
    inbox_page, inbox_offset = page_of({"page": params.get("inboxes", "1")}, size)
    fleet, fleet_total = servers.list_page(
        session, who.tenant_id, workspace_id, limit=size, offset=server_offset
    )
    ids = [s.id for s in fleet]
    inbox_counts = servers.inbox_counts(session, ids)
    checks = health.latest_for_servers(session, who.tenant_id, ids)
    mailboxes, inbox_total = inboxes.list_page(
        session, who.tenant_id, workspace_id, limit=size, offset=inbox_offset
    )
    previews, _ = operations.list_page(
        session, who.tenant_id, workspace_id, limit=1, offset=0, kind="preview"
    )
    context = {
        "workspace": workspace,
        "servers": fleet,
        "servers_total": fleet_total,
        "servers_page": server_page,
        "servers_pages": _pages(fleet_total, size),
        "inbox_counts": inbox_counts,
        "checks": checks,
        "inboxes": [InboxRead.model_validate(i) for i in mailboxes],
        "inboxes_total": inbox_total,
        "inboxes_page": inbox_page,
        "inboxes_pages": _pages(inbox_total, size),
        "domains": overview.domains(session, who.tenant_id, workspace_id),
        "preview": OperationRead.of(previews[0]) if previews else None,
    }
    return render(request, "workspace.html", context)


@router.post("/workspaces/{workspace_id}/preview")
def preview(
    workspace_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    return _enqueue(session, workspace, "preview", "preview requested", settings)


@router.post("/workspaces/{workspace_id}/apply")
def apply(
    workspace_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    workspace = workspaces.lock(session, who.tenant_id, workspace_id)
    return _enqueue(session, workspace, "up", "applied from the console", settings)


def _enqueue(
    session: Session, workspace: Workspace, kind: str, reason: str, settings: Settings
) -> Response:
    """Queue a `kind` operation on `workspace` and show its page."""
    op = operations.enqueue(session, workspace, kind, reason=reason, settings=settings)
    return redirect(f"/console/operations/{op.id}")


@router.get("/workspaces/{workspace_id}/operations")
def operations_page(
    workspace_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    size = settings.console_page_size
    number, offset = page_of(request.query_params, size)
    status = request.query_params.get("status") or None
    rows, total = operations.list_page(
        session, who.tenant_id, workspace_id, limit=size, offset=offset, status=status
    )
    context = {
        "workspace": workspace,
        "operations": [OperationRead.of(o, tail=1) for o in rows],
        "total": total,
        "page": number,
        "pages": _pages(total, size),
        "status": status or "",
    }
    return render(request, "operations.html", context)


_CATALOG = {"providers": PROVIDERS, "sizes": SIZES, "regions": REGIONS}


def _create_form(
    request: Request,
    template: str,
    workspace: Workspace,
    values: Mapping[str, str],
    exc: ValidationError | PenguinMailsError | None = None,
) -> Response:
    """A create form for `workspace`: blank, or `values` again beside `exc`'s field errors (422)."""
    context = {"workspace": workspace, "values": values, **_CATALOG}
    if exc is None:
        return render(request, template, context)
    context["errors"] = field_errors(exc)
    return render(request, template, context, status_code=422)


@router.get("/workspaces/{workspace_id}/servers/new")
def new_server_page(
    workspace_id: uuid.UUID, request: Request, session: SessionDep, who: SignedIn
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    return _create_form(request, "server_new.html", workspace, {})


def _server_body(form: dict[str, str]) -> dict[str, object]:
    body: dict[str, object] = {k: form.get(k, "") for k in ("provider", "size", "region")}
    for name in ("hostname", "ip_address", "ssh_user"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    port = form.get("ssh_port", "").strip()
    if port:
        body["ssh_port"] = int(port) if port.isdigit() else port
    return body


@router.post("/workspaces/{workspace_id}/servers")
def create_server(
    workspace_id: uuid.UUID,
    request: Request,
    form: Form,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    try:
        data = VpsCreate.model_validate(_server_body(form))
        # As POST /workspaces/{id}/vps: lock, create, enqueue the `up`, in one transaction.
        with session.begin_nested():
            locked = workspaces.lock(session, who.tenant_id, workspace_id)
            server: VpsServer = servers.create(session, locked, data, settings=settings)
            operations.enqueue(
                session, locked, "up", reason=f"add server {server.hostname}", settings=settings
            )
    except (ValidationError, PenguinMailsError) as exc:
        return _create_form(request, "server_new.html", workspace, form, exc)
    return redirect(f"/console/workspaces/{workspace_id}")


@router.get("/workspaces/{workspace_id}/inboxes/new")
def new_inbox_page(
    workspace_id: uuid.UUID, request: Request, session: SessionDep, who: SignedIn
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    return _create_form(request, "inbox_new.html", workspace, {})


@router.post("/workspaces/{workspace_id}/inboxes")
def create_inbox(
    workspace_id: uuid.UUID,
    request: Request,
    form: Form,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    workspace = workspaces.get(session, who.tenant_id, workspace_id)
    body: dict[str, object] = {
        k: form.get(k, "") for k in ("email_address", "vps_provider", "vps_size")
    }
    for name in ("display_name", "vps_region"):
        if form.get(name, "").strip():
            body[name] = form[name]
    try:
        data = InboxCreate.model_validate(body)
        with session.begin_nested():
            accepted = inboxes.create(session, who.tenant_id, workspace_id, data, settings=settings)
    except (ValidationError, PenguinMailsError) as exc:
        return _create_form(request, "inbox_new.html", workspace, form, exc)
    shown = InboxAccepted(
        **InboxRead.model_validate(accepted.inbox).model_dump(),
        operation_id=accepted.operation_id,
        credentials=accepted.credentials,
    )
    # The password is on this page only: never stored in clear, never on a later page.
    return render(request, "secret_once.html", {"inbox": shown, "created": True})
