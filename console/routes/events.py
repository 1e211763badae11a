"""The tenant's events, filtered by type (or family) and workspace."""

import uuid

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter, ValidationError

from api.deps import SessionDep, SettingsDep
from console.web import ConsoleRoute, SignedIn, page_of, render
from domain.events import catalogue
from domain.events import service as events
from domain.events.schemas import EventFilter, EventRead
from domain.workspaces import service as workspaces

router = APIRouter(route_class=ConsoleRoute, prefix="/console", include_in_schema=False)
_FILTER: TypeAdapter[str] = TypeAdapter(EventFilter)


@router.get("/events")
def events_page(
    request: Request, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    params = request.query_params
    size = settings.console_page_size
    number, offset = page_of(params, size)
    errors: dict[str, str] = {}
    type_filter: str | None = None
    if params.get("type"):
        try:
            type_filter = _FILTER.validate_python(params["type"])
        except ValidationError as exc:
            errors["type"] = exc.errors()[0]["msg"]
    workspace_id: uuid.UUID | None = None
    if params.get("workspace"):
        try:
            workspace_id = workspaces.get(session, who.tenant_id, uuid.UUID(params["workspace"])).id
        except ValueError:
            errors["workspace"] = "not a workspace id"
    rows, total = events.list_page(
        session,
        who.tenant_id,
        type=type_filter,
        workspace_id=workspace_id,
        limit=size,
        offset=offset,
    )
    spaces, _ = workspaces.list_page(session, who.tenant_id, limit=500, offset=0)
    context = {
        "events": [EventRead.model_validate(e) for e in rows],
        "total": total,
        "page": number,
        "pages": max(1, -(-total // size)),
        "types": [t.name for t in catalogue.ALL],
        "families": [f"{f}.*" for f in catalogue.FAMILIES],
        "workspaces": spaces,
        "selected": {"type": params.get("type", ""), "workspace": params.get("workspace", "")},
        "errors": errors,
    }
    return render(request, "events.html", context, status_code=422 if errors else 200)
