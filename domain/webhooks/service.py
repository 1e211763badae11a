"""Webhook endpoints per tenant and the delivery outbox.

Deliveries are fanned out from `events` by the delivery job (`fan_out`), not by whoever records an
event, so recording an event never waits on HTTP and never fails because an endpoint is down.
Claims use `FOR UPDATE SKIP LOCKED` and a lease (`next_attempt_at` pushed past the attempt's
deadline), so several workers share the outbox and a crashed worker's claims come due again.

One tenant's rows never stop another's deliveries: fan-out, claim and record each isolate a row
that fails (logged with its id and returned as `Skipped`, or recorded as a failed attempt), and an
endpoint that keeps failing is disabled with a `webhook.disabled` event."""

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Text, case, func, insert, select, text, type_coerce
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from database.pagination import paginate
from database.scoping import get_owned
from domain.events import catalogue
from domain.events import service as events
from domain.webhooks import guard, signing
from domain.webhooks.schemas import (
    AttemptRead,
    DeliveryFilter,
    DeliveryRead,
    WebhookCreate,
    WebhookUpdate,
    event_body,
)
from domain.webhooks.states import DELIVERY, DeliveryStatus
from kit import crypto
from kit.errors import NotFound, ValidationFailed
from settings.webhooks import WebhookSettings

log = logging.getLogger(__name__)
URL_MAX_LENGTH = 2048  # webhook_endpoints.url


def _stored_url(given: str, settings: WebhookSettings) -> str:
    """The URL as deliveries use it (host in ASCII, punycode, form), or a 422 naming `url`."""
    try:
        url = guard.usable_url(given)
    except guard.UnusableURL as exc:
        raise ValidationFailed(f"webhook URL cannot be used: {exc}", field="url") from exc
    host = url.raw_host.decode("ascii")
    if guard.literal_internal(host) and not settings.webhook_allow_private_urls:
        raise ValidationFailed(
            f"webhook host {host!r} is a private or loopback address", field="url"
        )
    stored = str(url)
    if len(stored) > URL_MAX_LENGTH:
        raise ValidationFailed(
            f"webhook URL is {len(stored)} characters long (at most {URL_MAX_LENGTH})",
            field="url",
        )
    return stored


def create(
    session: Session, tenant_id: uuid.UUID, data: WebhookCreate, *, settings: WebhookSettings
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its signing secret (the only time the secret is available in clear).
    The URL is stored as deliveries use it: host in ASCII (punycode) form."""
    stored = _stored_url(str(data.url), settings)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=tenant_id,
        url=stored,
        description=data.description,
        event_types=data.event_types,
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


def update(
    session: Session,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    data: WebhookUpdate,
    *,
    settings: WebhookSettings,
) -> WebhookEndpoint:
    """Change the URL, description, subscription or `active`. A new subscription, or turning
    the endpoint back on, starts from now (`events_since`): it is never sent the backlog of the
    fan-out window. Turning it back on also forgets its failures."""
    endpoint = get_owned(
        session,
        WebhookEndpoint,
        tenant_id,
        endpoint_id,
        noun="webhook",
        field="webhook_id",
        for_update=True,
    )
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        endpoint.url = _stored_url(str(data.url), settings)
    if "description" in changes:
        endpoint.description = changes["description"]
    restart = False
    if "event_types" in changes and changes["event_types"] != endpoint.event_types:
        endpoint.event_types = changes["event_types"]
        restart = True
    if "active" in changes and changes["active"] != endpoint.active:
        endpoint.active = changes["active"]
        if endpoint.active:
            endpoint.consecutive_failures = 0
            restart = True
    if restart:
        endpoint.events_since = func.now()
    session.flush()
    session.refresh(endpoint)
    return endpoint


def delete(session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    session.delete(get(session, tenant_id, endpoint_id))


def deliveries(
    session: Session,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    only: DeliveryFilter | None = None,
) -> tuple[list[DeliveryRead], int]:
    """The delivery log of one endpoint, newest first, every attempt included; `only` filters
    by status, event type (exact or `family.*`) and creation time (`since` <= t < `until`)."""
    get(session, tenant_id, endpoint_id)
    where = [WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.tenant_id == tenant_id]
    only = only or DeliveryFilter()
    if only.status is not None:
        where.append(WebhookDelivery.status == only.status)
    if only.event_type is not None:
        where.append(events.type_matches(only.event_type))
    if only.since is not None:
        where.append(WebhookDelivery.created_at >= only.since)
    if only.until is not None:
        where.append(WebhookDelivery.created_at < only.until)
    joined = (
        select(func.count())
        .select_from(WebhookDelivery)
        .join(Event, Event.id == WebhookDelivery.event_id)
    )
    total = session.scalar(joined.where(*where)) or 0
    rows = session.execute(
        select(WebhookDelivery, Event.type)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(*where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return _views(session, rows), total


def delivery(
    session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryRead:
    """One delivery of the tenant's endpoint, or NotFound naming `delivery_id`."""
    rows = session.execute(
        select(WebhookDelivery, Event.type)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.tenant_id == tenant_id,
        )
    ).all()
    if not rows:
        raise NotFound(f"delivery {delivery_id} not found", field="delivery_id")
    return _views(session, rows)[0]


def _views(session: Session, rows: Sequence[Row[WebhookDelivery, str]]) -> list[DeliveryRead]:
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
    return out


# --- the outbox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """A row one step of the delivery job could not handle; the others went on."""

    step: str  # fan_out | record
    row_id: uuid.UUID  # the endpoint (fan_out, disabling) or the delivery (record)
    reason: str


def _clip(message: str, limit: int = 500) -> str:
    """An error as Postgres can store it (no NUL) and short enough to read."""
    return message.replace("\x00", "\\x00")[:limit]


def _reason(exc: Exception) -> str:
    """Postgres's own message for a database error (without the statement), else the error."""
    return _clip(str(exc.orig) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}")


# A pattern is `*`, an exact type or `family.*` (`domain.events.catalogue`); an empty list matches
# nothing. Endpoints whose `event_types` is not a JSON array (written around the API) match
# nothing here; `fan_out` reports them. CASE (not AND) so jsonb_array_elements never sees a
# non-array. Types that are never fanned out (a test ping) go only to the endpoint they were made
# for, inserted by `domain.webhooks.manual`.
_FAN_OUT = """
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, next_attempt_at)
    SELECT e.tenant_id, w.id, e.id, e.created_at
    FROM events e
    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.active
    WHERE e.created_at >= w.events_since
      AND e.created_at >= :cutoff
      AND e.type <> ALL (CAST(:not_fanned_out AS text[]))
      AND CASE
        WHEN jsonb_typeof(w.event_types) <> 'array' THEN false
        ELSE EXISTS (
          SELECT 1 FROM jsonb_array_elements_text(w.event_types) AS t(pattern)
          WHERE t.pattern = '*'
             OR t.pattern = e.type
             OR (right(t.pattern, 2) = '.*' AND starts_with(e.type, left(t.pattern, -1)))
        )
      END
      AND NOT EXISTS (
        SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.event_id = e.id
      )
      {only}
    ON CONFLICT (endpoint_id, event_id) DO NOTHING
    """
_FAN_OUT_ALL = text(_FAN_OUT.format(only=""))
_FAN_OUT_ONE = text(_FAN_OUT.format(only="AND w.id = :endpoint_id"))

_CLAIM = text(
    """
    WITH ranked AS (
      SELECT d.id, row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at) AS n
      FROM webhook_deliveries d
      JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.active
      WHERE d.status = 'pending' AND d.next_attempt_at <= :now
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


@dataclass
class FanOut:
    inserted: int = 0
    skipped: list[Skipped] = field(default_factory=list)


def fan_out(session: Session, now: datetime, window: timedelta) -> FanOut:
    """One set-based INSERT; if that fails, endpoint by endpoint, each in its own savepoint, so
    a row that breaks the statement costs only its own endpoint's deliveries."""
    result = FanOut()
    for endpoint_id in session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.active, func.jsonb_typeof(WebhookEndpoint.event_types) != "array"
        )
    ):
        log.warning("webhooks fan-out: endpoint %s skipped: event_types is not a list", endpoint_id)
        result.skipped.append(Skipped("fan_out", endpoint_id, "event_types is not a list"))
    params = {"cutoff": now - window, "not_fanned_out": list(catalogue.NOT_FANNED_OUT)}
    try:
        with session.begin_nested():
            result.inserted = _rowcount(session.execute(_FAN_OUT_ALL, params))
        return result
    except Exception:
        log.exception("webhooks fan-out failed as one statement; retrying endpoint by endpoint")
    endpoint_ids = session.scalars(
        select(WebhookEndpoint.id)
        .where(WebhookEndpoint.active, func.jsonb_typeof(WebhookEndpoint.event_types) == "array")
        .order_by(WebhookEndpoint.id)
    ).all()
    for endpoint_id in endpoint_ids:
        try:
            with session.begin_nested():
                rows = session.execute(_FAN_OUT_ONE, params | {"endpoint_id": endpoint_id})
                result.inserted += _rowcount(rows)
        except Exception as exc:
            log.warning("webhooks fan-out: endpoint %s skipped: %s", endpoint_id, _reason(exc))
            result.skipped.append(Skipped("fan_out", endpoint_id, _reason(exc)))
    return result


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class Job:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    tenant_id: uuid.UUID
    attempt: int
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    body: bytes
    # Why this delivery could not even be prepared (its attempt fails with this error).
    problem: str | None = None
    # The secret before the last rotation, while its grace period runs: signed with it too.
    previous_secret: str | None = None

    def __repr__(self) -> str:
        return f"Job({self.delivery_id}, attempt {self.attempt}, {self.url})"


def claim(
    session: Session, now: datetime, *, batch: int, per_endpoint: int, lease: timedelta
) -> list[Job]:
    """Due deliveries, leased to the caller. A row whose job cannot be built (a secret that no
    longer decrypts, say) comes back with `problem` set: its attempt fails, the others go on."""
    ids = list(
        session.scalars(
            _CLAIM,
            {"now": now, "per_endpoint": per_endpoint, "batch": batch, "lease_until": now + lease},
        )
    )
    return jobs_for(session, ids, now)


def jobs_for(session: Session, ids: Sequence[uuid.UUID], now: datetime) -> list[Job]:
    """The jobs of deliveries the caller holds (claimed, or leased by hand)."""
    if not ids:
        return []
    endpoint = WebhookEndpoint
    in_grace = endpoint.previous_secret_expires_at > now
    rows = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            endpoint.id.label("endpoint_id"),
            endpoint.tenant_id,
            endpoint.url,
            # Still encrypted: decrypted per row below, so one bad secret fails one job.
            type_coerce(endpoint.secret_encrypted, Text).label("secret"),
            case((in_grace, type_coerce(endpoint.previous_secret_encrypted, Text))).label(
                "previous"
            ),
            Event,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.id.in_(ids))
    ).all()
    jobs = []
    for row in rows:
        e = row.Event
        job = Job(
            delivery_id=row.id,
            endpoint_id=row.endpoint_id,
            tenant_id=row.tenant_id,
            attempt=row.attempts + 1,
            url=row.url,
            secret="",
            event_id=e.id,
            event_type=e.type,
            body=b"",
        )
        try:
            body = json.dumps(event_body(e), separators=(",", ":"), sort_keys=True).encode()
            job = replace(job, secret=crypto.decrypt(row.secret), body=body)
        except Exception as exc:
            log.warning(
                "webhook delivery %s (endpoint %s) cannot be prepared: %s",
                row.id,
                row.endpoint_id,
                exc,
            )
            job = replace(job, problem=_clip(f"cannot prepare the delivery: {exc}"))
        if row.previous is not None and job.problem is None:
            try:
                job = replace(job, previous_secret=crypto.decrypt(row.previous))
            except Exception as exc:  # the new secret still signs: deliver with it alone
                log.warning(
                    "webhook endpoint %s: previous secret cannot be decrypted (%s); "
                    "signing with the current one only",
                    row.endpoint_id,
                    exc,
                )
        jobs.append(job)
    return jobs


def rotate_secret(
    session: Session, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, settings: WebhookSettings
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (returned in clear this once). The one it replaces keeps signing
    deliveries too for `webhook_secret_grace_seconds`, so receivers can roll over; a secret
    still in its grace period from an earlier rotation is dropped. The old secret is copied
    as stored (never decrypted), so one that no longer decrypts cannot block a rotation."""
    row = get(session, tenant_id, endpoint_id)
    grace = timedelta(seconds=settings.webhook_secret_grace_seconds)
    secret = signing.new_secret()
    endpoint = WebhookEndpoint
    keep = grace > timedelta(0)
    session.execute(
        sql_update(WebhookEndpoint)
        .where(endpoint.id == endpoint_id, endpoint.tenant_id == tenant_id)
        .values(
            previous_secret_encrypted=endpoint.secret_encrypted if keep else None,
            previous_secret_expires_at=func.now() + grace if keep else None,
            secret_encrypted=secret,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(row)
    return row, secret


_FORGET_SECRETS = text(
    """
    UPDATE webhook_endpoints SET previous_secret_encrypted = NULL,
      previous_secret_expires_at = NULL
    WHERE id IN (
      SELECT id FROM webhook_endpoints WHERE previous_secret_expires_at <= :now
      ORDER BY id FOR NO KEY UPDATE SKIP LOCKED
    )
    """
)


def forget_expired_secrets(session: Session, now: datetime) -> int:
    """Previous secrets whose grace period is over are deleted (rows someone holds: next run)."""
    return _rowcount(session.execute(_FORGET_SECRETS, {"now": now}))


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


@dataclass
class Recorded:
    skipped: list[Skipped] = field(default_factory=list)
    disabled: list[uuid.UUID] = field(default_factory=list)


@dataclass
class _Tally:
    """One endpoint's outcomes in one batch."""

    tenant_id: uuid.UUID
    succeeded: bool = False
    failures: int = 0
    died: bool = False
    last_error: str | None = None


def record(
    session: Session,
    outcomes: Sequence[Outcome],
    now: datetime,
    *,
    max_attempts: int,
    base: float,
    cap: float,
    disable_after: int | None = None,
) -> Recorded:
    """Each outcome in its own savepoint (one that cannot be written is skipped and reported),
    then each endpoint's failure count; an endpoint whose delivery went dead after at least
    `disable_after` consecutive failed attempts is disabled."""
    result = Recorded()
    tallies: dict[uuid.UUID, _Tally] = {}
    for o in outcomes:
        try:
            with session.begin_nested():
                status = _record_one(session, o, now, max_attempts=max_attempts, base=base, cap=cap)
        except Exception as exc:
            reason = _reason(exc)
            log.error("webhook delivery %s: outcome not recorded: %s", o.job.delivery_id, reason)
            result.skipped.append(Skipped("record", o.job.delivery_id, reason))
            continue
        if status is None:  # the endpoint was deleted while the request was in flight
            continue
        tally = tallies.setdefault(o.job.endpoint_id, _Tally(o.job.tenant_id))
        if o.ok:
            tally.succeeded = True
        else:
            tally.failures += 1
            tally.last_error = None if o.error is None else _clip(o.error)
            tally.died |= status == "dead"
    for endpoint_id in sorted(tallies):  # one lock order across workers
        tally = tallies[endpoint_id]
        try:
            with session.begin_nested():
                if _count_failures(session, endpoint_id, tally, disable_after):
                    result.disabled.append(endpoint_id)
        except Exception as exc:
            reason = _reason(exc)
            log.error("webhook endpoint %s: failure count not recorded: %s", endpoint_id, reason)
            result.skipped.append(Skipped("record", endpoint_id, reason))
    return result


def _record_one(
    session: Session, o: Outcome, now: datetime, *, max_attempts: int, base: float, cap: float
) -> str | None:
    """The delivery's new status, or None when it is no longer pending (endpoint deleted)."""
    error = None if o.error is None else _clip(o.error, 2000)
    values: dict[str, object] = {
        "attempts": o.job.attempt,
        "last_status_code": o.status_code,
        "last_error": error,
    }
    pending = DeliveryStatus.PENDING
    if o.ok:
        values |= {"status": DELIVERY.edge(pending, DeliveryStatus.DELIVERED)["target"]}
        values |= {"delivered_at": now}
    elif o.job.attempt >= max_attempts:
        values |= {"status": DELIVERY.edge(pending, DeliveryStatus.DEAD)["target"]}
    else:
        values |= {"next_attempt_at": now + backoff(o.job.attempt, base, cap)}
    status = session.scalar(
        sql_update(WebhookDelivery)
        .where(WebhookDelivery.id == o.job.delivery_id, WebhookDelivery.status == pending)
        .values(**values)
        .returning(WebhookDelivery.status)
    )
    if status is not None:
        session.execute(
            insert(WebhookAttempt).values(
                delivery_id=o.job.delivery_id,
                number=o.job.attempt,
                status_code=o.status_code,
                error=error,
                duration_ms=round(o.duration_ms, 1),
            )
        )
    return status


def _count_failures(
    session: Session, endpoint_id: uuid.UUID, tally: _Tally, disable_after: int | None
) -> bool:
    """Update the endpoint's consecutive failures; True when this disabled it."""
    endpoint = WebhookEndpoint
    if tally.succeeded:
        session.execute(
            sql_update(WebhookEndpoint)
            .where(endpoint.id == endpoint_id, endpoint.consecutive_failures != 0)
            .values(consecutive_failures=0)
        )
        return False
    failures = session.scalar(
        sql_update(WebhookEndpoint)
        .where(endpoint.id == endpoint_id)
        .values(consecutive_failures=endpoint.consecutive_failures + tally.failures)
        .returning(endpoint.consecutive_failures)
    )
    if failures is None or disable_after is None or not tally.died or failures < disable_after:
        return False
    # Only the worker whose UPDATE flips `active` records the event.
    disabled = session.scalar(
        sql_update(WebhookEndpoint)
        .where(endpoint.id == endpoint_id, endpoint.active)
        .values(active=False)
        .returning(endpoint.id)
    )
    if disabled is None:
        return False
    reason = (
        f"disabled after {failures} consecutive failed delivery attempts; "
        f"last error: {tally.last_error}"
    )
    session.execute(
        sql_update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=DELIVERY.edge(DeliveryStatus.PENDING, DeliveryStatus.DEAD)["target"],
            last_error=_clip(f"not attempted: endpoint {reason}", 2000),
        )
    )
    events.record(
        session,
        tenant_id=tally.tenant_id,
        type=catalogue.WEBHOOK_DISABLED,
        message=_clip(f"Webhook {endpoint_id} {reason}", 1000),
        subject_type="webhook",
        subject_id=endpoint_id,
        data={"consecutive_failures": failures, "last_error": tally.last_error},
    )
    session.flush()  # inside the savepoint: a failure here undoes only this endpoint's update
    log.warning("webhook endpoint %s %s", endpoint_id, reason)
    return True
