"""Webhook endpoints per tenant and the delivery outbox.

Deliveries are fanned out from `events` by the delivery job (`fan_out`), not by whoever records an
event, so recording an event never waits on HTTP and never fails because an endpoint is down.
Claims use `FOR UPDATE SKIP LOCKED` and a lease (`next_attempt_at` pushed past the attempt's
deadline), so several workers share the outbox and a crashed worker's claims come due again."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from database.pagination import paginate
from database.scoping import get_owned
from domain.events.model import Event
from domain.webhooks import guard, signing
from domain.webhooks.model import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from domain.webhooks.schemas import AttemptRead, DeliveryRead, WebhookCreate, event_body
from kit.errors import ValidationFailed
from settings import get_settings


def create(
    session: Session, tenant_id: uuid.UUID, data: WebhookCreate
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its signing secret (the only time the secret is available in clear)."""
    host = data.url.host or ""
    if guard.literal_internal(host) and not get_settings().webhook_allow_private_urls:
        raise ValidationFailed(
            f"webhook host {host!r} is a private or loopback address", field="url"
        )
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=str(data.url),
        description=data.description,
        event_types=sorted(set(data.event_types)),
        secret_encrypted=secret,
    )
    session.add(endpoint)
    session.flush()
    session.refresh(endpoint)
    return endpoint, secret


def get(session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return get_owned(
        session, WebhookEndpoint, tenant_id, endpoint_id, noun="webhook", field="webhook_id"
    )


def list_page(
    session: Session, tenant_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[WebhookEndpoint], int]:
    where = WebhookEndpoint.tenant_id == tenant_id
    return paginate(
        session,
        WebhookEndpoint,
        [where],
        order_by=(WebhookEndpoint.created_at, WebhookEndpoint.id),
        limit=limit,
        offset=offset,
    )


def delete(session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    session.delete(get(session, tenant_id, endpoint_id))


def deliveries(
    session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[DeliveryRead], int]:
    """The delivery log of one endpoint, newest first, every attempt included."""
    get(session, tenant_id, endpoint_id)
    where = (WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.tenant_id == tenant_id)
    total = session.scalar(select(func.count()).select_from(WebhookDelivery).where(*where)) or 0
    rows = session.execute(
        select(WebhookDelivery, Event.type)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(*where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    ids = [d.id for d, _ in rows]
    attempts: dict[uuid.UUID, list[AttemptRead]] = {i: [] for i in ids}
    for a in session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.number)
    ):
        attempts[a.delivery_id].append(AttemptRead.model_validate(a))
    out = [
        DeliveryRead(
            id=d.id,
            event_id=d.event_id,
            event_type=event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            created_at=d.created_at or d.next_attempt_at,
            log=attempts[d.id],
        )
        for d, event_type in rows
    ]
    return out, total


# --- the outbox -------------------------------------------------------------------------------

_FAN_OUT = text(
    """
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, next_attempt_at)
    SELECT e.tenant_id, w.id, e.id, e.created_at
    FROM events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.active
    WHERE e.created_at >= w.created_at
      AND e.created_at >= :cutoff
      AND (
        jsonb_array_length(w.event_types) = 0
        OR EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(w.event_types) AS t(pattern)
          WHERE t.pattern = e.type
             OR (right(t.pattern, 2) = '.*' AND starts_with(e.type, left(t.pattern, -1)))
        )
      )
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.event_id = e.id
      )
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    """
)

_CLAIM = text(
    """
    WITH ranked AS (
      SELECT id, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at) AS n
      FROM webhook_deliveries
      WHERE status = 'pending' AND next_attempt_at <= :now
    ), chosen AS (
      SELECT d.id FROM webhook_deliveries d JOIN ranked r ON r.id = d.id
      WHERE r.n <= :per_endpoint AND d.status = 'pending'
      ORDER BY d.next_attempt_at
      LIMIT :batch
      FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE webhook_deliveries SET next_attempt_at = :lease_until, updated_at = now()
    WHERE id IN (SELECT id FROM chosen)
    RETURNING id
    """
)


def fan_out(session: Session, now: datetime, window: timedelta) -> int:
    result = session.execute(_FAN_OUT, {"cutoff": now - window})
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Job:
    delivery_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: bytes

    def __repr__(self) -> str:
        return f"Job({self.delivery_id}, attempt {self.attempt}, {self.url})"


def claim(
    session: Session, now: datetime, *, batch: int, per_endpoint: int, lease: timedelta
) -> list[Job]:
    ids = list(
        session.scalars(
            _CLAIM,
            {"now": now, "per_endpoint": per_endpoint, "batch": batch, "lease_until": now + lease},
        )
    )
    if not ids:
        return []
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint, Event)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(ids))
    ).all()
    return [
        Job(
            delivery_id=d.id,
            attempt=d.attempts + 1,
            url=w.url,
            secret=w.secret_encrypted,
            event_id=e.id,
            event_type=e.type,
            body=json.dumps(event_body(e), separators=(",", ":"), sort_keys=True).encode(),
        )
        for d, w, e in rows
    ]


@dataclass(frozen=True)
class Outcome:
    job: Job
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def record(
    session: Session,
    outcomes: Sequence[Outcome],
    now: datetime,
    *,
    max_attempts: int,
    base: float,
    cap: float,
) -> None:
    for o in outcomes:
        values: dict[str, object] = {
            "attempts": o.job.attempt,
            "last_status_code": o.status_code,
            "last_error": o.error,
        }
        if o.ok:
            values |= {"status": "delivered", "delivered_at": now}
        elif o.job.attempt >= max_attempts:
            values |= {"status": "dead"}
        else:
            values |= {"next_attempt_at": now + backoff(o.job.attempt, base, cap)}
        # The endpoint may have been deleted while the request was in flight: then nothing.
        updated = session.scalar(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == o.job.delivery_id, WebhookDelivery.status == "pending")
            .values(**values)
            .returning(WebhookDelivery.id)
        )
        if updated is not None:
            session.add(
                WebhookAttempt(
                    delivery_id=o.job.delivery_id,
                    number=o.job.attempt,
                    status_code=o.status_code,
                    error=o.error,
                    duration_ms=round(o.duration_ms, 1),
                )
            )
