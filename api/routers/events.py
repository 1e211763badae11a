import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentKey, PageDep, SessionDep
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.events import catalogue, service
from domain.events.schemas import EventFilter, EventRead, EventTypeList, EventTypeRead

router = APIRouter(route_class=RetryingRoute, tags=["events"])


@router.get(
    "/events", response_model=PageOf[EventRead], summary="The tenant's events, newest first"
)
def list_events(
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    type: Annotated[
        EventFilter | None,
        Query(
            description="Exact type (`health.alert`) or a family (`health.*`) of "
            "`GET /api/v1/event-types`.",
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


@router.get(
    "/event-types",
    response_model=EventTypeList,
    summary="Every event type, with what it means and an example of its webhook body",
)
def list_event_types(key: CurrentKey) -> EventTypeList:
    return EventTypeList(
        items=[EventTypeRead.of(t) for t in catalogue.ALL], families=list(catalogue.FAMILIES)
    )
