import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep, TransactionDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.events.schemas import EventFilter
from domain.webhooks import manual, service
from domain.webhooks.delivery import DeliveryOptions
from domain.webhooks.schemas import (
    DeliveryFilter,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookSecretRotated,
    WebhookUpdate,
)
from domain.webhooks.states import DeliveryStatus
from kit.errors import ValidationFailed

router = APIRouter(route_class=RetryingRoute, prefix="/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Register an endpoint; the signing secret is in this response only",
)
def create_webhook(
    body: WebhookCreate,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        endpoint, secret = service.create(session, key.tenant_id, body, settings=settings)
        read = WebhookRead.model_validate(endpoint).model_dump()
        return 201, WebhookCreated(**read, secret=secret).model_dump(mode="json")

    # A replay answers the same secret: it is stored encrypted with the answer.
    return respond(session, key, idempotency_key, request, body, produce, settings=settings)


@router.get("", response_model=PageOf[WebhookRead])
def list_webhooks(session: SessionDep, key: CurrentKey, page: PageDep) -> PageOf[WebhookRead]:
    rows, total = service.list_page(session, key.tenant_id, limit=page.limit, offset=page.offset)
    return PageOf[WebhookRead](
        items=[WebhookRead.model_validate(w) for w in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{webhook_id}", response_model=WebhookRead)
def get_webhook(webhook_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> WebhookRead:
    return WebhookRead.model_validate(service.get(session, key.tenant_id, webhook_id))


@router.patch(
    "/{webhook_id}",
    response_model=WebhookRead,
    summary="Change the URL, description, event types or active; only the fields given",
)
def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> WebhookRead:
    endpoint = service.update(session, key.tenant_id, webhook_id, body, settings=settings)
    return WebhookRead.model_validate(endpoint)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> Response:
    service.delete(session, key.tenant_id, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookSecretRotated,
    summary="A new signing secret, shown only in this response; the old one keeps signing "
    "deliveries too for PENGUINMAILS_WEBHOOK_SECRET_GRACE_SECONDS",
)
def rotate_secret(
    webhook_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> WebhookSecretRotated:
    endpoint, secret = service.rotate_secret(session, key.tenant_id, webhook_id, settings=settings)
    read = WebhookRead.model_validate(endpoint).model_dump()
    return WebhookSecretRotated(**read, secret=secret)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=PageOf[DeliveryRead],
    summary="The delivery log: each delivery with every attempt, newest first",
)
def list_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    status_filter: Annotated[
        DeliveryStatus | None, Query(alias="status", description="pending, delivered or dead.")
    ] = None,
    event_type: Annotated[
        EventFilter | None,
        Query(description="Exact type (`health.alert`) or a family (`health.*`)."),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Deliveries created at or after this time.")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Deliveries created before this time.")
    ] = None,
) -> PageOf[DeliveryRead]:
    if since is not None and until is not None and until < since:
        raise ValidationFailed("until is before since", field="until")
    only = DeliveryFilter(status=status_filter, event_type=event_type, since=since, until=until)
    rows, total = service.deliveries(
        session, key.tenant_id, webhook_id, limit=page.limit, offset=page.offset, only=only
    )
    return PageOf[DeliveryRead](items=rows, total=total, limit=page.limit, offset=page.offset)


# A test and a redelivery POST with no transaction open: short transactions of their own.


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryRead,
    summary="Send a signed webhook.ping to this endpoint now; the delivery, with its attempt",
)
def send_test_ping(
    webhook_id: uuid.UUID, key: CurrentKey, transaction: TransactionDep, settings: SettingsDep
) -> DeliveryRead:
    options = DeliveryOptions.from_settings(settings)
    return manual.ping(transaction, key.tenant_id, webhook_id, options)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    summary="Send a delivery's event to this endpoint again now; the delivery, with the new "
    "attempt in its log",
)
def redeliver(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    key: CurrentKey,
    transaction: TransactionDep,
    settings: SettingsDep,
) -> DeliveryRead:
    options = DeliveryOptions.from_settings(settings)
    return manual.redeliver(transaction, key.tenant_id, webhook_id, delivery_id, options)
