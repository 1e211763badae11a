"""Deliveries made by hand: a test ping (`POST /webhooks/{id}/test`) and a redelivery
(`POST /webhooks/{id}/deliveries/{delivery_id}/redeliver`). Both are sent now, down the delivery
job's own path (`service.jobs_for`, `delivery.send_all`, `service.record`): signed the same way,
logged as an attempt, counted in the endpoint's failures, retried with backoff if they fail.

No transaction is open during the POST. A short one leases the delivery to the request
(`next_attempt_at` pushed past the attempt's deadline, as the job's claim does), so the job does
not send it as well; if the process dies mid-request, the lease runs out and the job sends it.
The outcome is recorded in another; the answer is read in a third."""

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.models.webhooks import WebhookDelivery
from database.transactions import Transaction, is_retryable
from domain.events import catalogue
from domain.events import service as events
from domain.webhooks import service
from domain.webhooks.delivery import DeliveryOptions, send_all
from domain.webhooks.schemas import DeliveryRead
from domain.webhooks.states import DELIVERY, DeliveryStatus
from kit.aio import run_async
from kit.errors import Conflict, NotFound
from kit.time import utcnow

log = logging.getLogger(__name__)


def _send(
    transaction: Transaction,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    options: DeliveryOptions,
    lease: Callable[[Session, datetime], uuid.UUID],
) -> DeliveryRead:
    def prepare(session: Session) -> service.Job:
        endpoint = service.get(session, tenant_id, endpoint_id)
        if not endpoint.active:
            raise Conflict(
                f"webhook {endpoint_id} is not active; PATCH it with active: true first",
                field="active",
            )
        now = utcnow()
        delivery_id = lease(session, now + options.lease)
        [job] = service.jobs_for(session, [delivery_id], now)
        return job

    job = transaction(prepare)
    [outcome] = run_async(send_all([job], options))

    def record(session: Session) -> None:
        service.record(
            session,
            [outcome],
            utcnow(),
            max_attempts=options.max_attempts,
            base=options.backoff,
            cap=options.backoff_max,
            disable_after=options.disable_after,
        )

    try:
        transaction(record)
    except DBAPIError as exc:
        if not is_retryable(exc):
            raise
        # Not raised: the request would be retried whole, and the POST sent again. The
        # delivery stays leased; the job sends it once the lease runs out.
        log.warning("webhook delivery %s: outcome not recorded: %s", job.delivery_id, exc)
    return transaction(
        lambda session: service.delivery(session, tenant_id, endpoint_id, job.delivery_id)
    )


def ping(
    transaction: Transaction,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    options: DeliveryOptions,
) -> DeliveryRead:
    """A `webhook.ping` event, delivered to this endpoint only (whatever it subscribes to)."""

    def lease(session: Session, until: datetime) -> uuid.UUID:
        event = events.record(
            session,
            tenant_id=tenant_id,
            type=catalogue.WEBHOOK_PING,
            message=f"test delivery to webhook {endpoint_id}",
            subject_type="webhook",
            subject_id=endpoint_id,
            data={"webhook_id": str(endpoint_id)},
        )
        session.flush()
        row = WebhookDelivery(
            tenant_id=tenant_id, endpoint_id=endpoint_id, event_id=event.id, next_attempt_at=until
        )
        session.add(row)
        session.flush()
        return row.id

    return _send(transaction, tenant_id, endpoint_id, options, lease)


def redeliver(
    transaction: Transaction,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    options: DeliveryOptions,
) -> DeliveryRead:
    """One more attempt of a delivery (whatever its status), numbered after its last one. A
    delivered or dead delivery is pending again until the outcome is recorded."""

    def lease(session: Session, until: datetime) -> uuid.UUID:
        row = session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.tenant_id == tenant_id,
            )
            .with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"delivery {delivery_id} not found", field="delivery_id")
        DELIVERY.move(row, DeliveryStatus.PENDING)
        row.next_attempt_at = until
        session.flush()
        return row.id

    return _send(transaction, tenant_id, endpoint_id, options, lease)
