import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentKey, PageDep, SessionDep
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.events import service
from domain.events.schemas import EventRead

router = APIRouter(route_class=RetryingRoute, prefix="/events", tags=["events"])


@router.get("", response_model=PageOf[EventRead], summary="The tenant's events, newest first")
def list_events(
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    type: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$",
            description="Exact type (`health.alert`) or a prefix (`health.*`).",
        ),
    ] = None,
    workspace_id: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[
        datetime | None, Query(description="Only events at or after this time (ISO 8601).")
    ] = None,
) -> PageOf[EventRead]:
    rows, total = service.list_page(
        session,
        key.tenant_id,
        type=type,
        workspace_id=workspace_id,
        since=since,
        limit=page.limit,
        offset=page.offset,
    )
    return PageOf[EventRead](
        items=[EventRead.model_validate(e) for e in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
