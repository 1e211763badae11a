import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.inboxes import service
from domain.inboxes.schemas import InboxAccepted, InboxCreate, InboxRead, InboxUpdate
from domain.reputation import service as reputation
from domain.reputation.schemas import ReputationRead

router = APIRouter(route_class=RetryingRoute, tags=["inboxes"])


def _accepted(accepted: service.Accepted) -> dict[str, object]:
    """The `InboxAccepted` body: the inbox validated once, its id of the run and the
    credentials added to its JSON (no second model of the same fields to validate again)."""
    body = InboxRead.model_validate(accepted.inbox).model_dump(mode="json")
    body["operation_id"] = str(accepted.operation_id)
    body["credentials"] = (
        accepted.credentials.model_dump(mode="json") if accepted.credentials else None
    )
    return body


@router.post(
    "/workspaces/{workspace_id}/inboxes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InboxAccepted,
    summary="Create an inbox; its server is provisioned in the background",
)
def create_inbox(
    workspace_id: uuid.UUID,
    body: InboxCreate,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    return respond(
        session,
        key,
        idempotency_key,
        request,
        body,
        lambda: (
            202,
            _accepted(
                service.create(session, key.tenant_id, workspace_id, body, settings=settings)
            ),
        ),
    )


@router.get("/workspaces/{workspace_id}/inboxes", response_model=PageOf[InboxRead])
def list_inboxes(
    workspace_id: uuid.UUID,
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    status_filter: Annotated[str | None, Query(alias="status", max_length=50)] = None,
) -> PageOf[InboxRead]:
    rows, total = service.list_page(
        session,
        key.tenant_id,
        workspace_id,
        limit=page.limit,
        offset=page.offset,
        status=status_filter,
    )
    return PageOf[InboxRead](
        items=[InboxRead.model_validate(i) for i in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/inboxes/{inbox_id}", response_model=InboxRead)
def get_inbox(inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> InboxRead:
    return InboxRead.model_validate(service.get(session, key.tenant_id, inbox_id))


@router.get("/inboxes/{inbox_id}/reputation", response_model=ReputationRead)
def get_reputation(
    inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey, page: PageDep
) -> ReputationRead:
    """The score, each signal with its value, weight and reason, and the history of changes."""
    return ReputationRead.model_validate(
        reputation.view(session, key.tenant_id, inbox_id, limit=page.limit, offset=page.offset)
    )


@router.patch("/inboxes/{inbox_id}", response_model=InboxRead)
def update_inbox(
    inbox_id: uuid.UUID,
    body: InboxUpdate,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> InboxRead:
    inbox, _ = service.update(session, key.tenant_id, inbox_id, body, settings=settings)
    return InboxRead.model_validate(inbox)


@router.post(
    "/inboxes/{inbox_id}/credentials/rotate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=InboxAccepted,
    summary="Issue a new mailbox password (shown once); the server is updated in the background",
)
def rotate_credentials(
    inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> JSONResponse:
    accepted = service.rotate_credentials(session, key.tenant_id, inbox_id, settings=settings)
    return JSONResponse(_accepted(accepted), status_code=202)


@router.delete(
    "/inboxes/{inbox_id}", status_code=status.HTTP_202_ACCEPTED, response_model=InboxAccepted
)
def delete_inbox(
    inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> Response:
    accepted = service.mark_for_deletion(session, key.tenant_id, inbox_id, settings=settings)
    return JSONResponse(_accepted(accepted), status_code=202)
