import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.events import catalogue
from domain.webhooks.states import DeliveryStatus


def _known(pattern: str) -> str:
    problem = catalogue.pattern_problem(pattern)
    if problem is not None:
        raise PydanticCustomError("unknown_event_type", problem)
    return pattern


def _subscribed(patterns: list[str]) -> list[str]:
    if not patterns:
        raise PydanticCustomError(
            "no_event_types", "subscribe to at least one event type, or to '*' for every one"
        )
    return sorted(set(patterns))


# An exact type (`health.alert`), a family (`health.*`) or `*`, each checked against the catalogue.
EventPattern = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_known)
]
EventPatterns = Annotated[list[EventPattern], Field(max_length=50), AfterValidator(_subscribed)]
EVENT_TYPES_DOC = (
    "Event types to send: exact (`health.alert`), a family (`health.*`) or `*` for every type; "
    "each must name a type or family of `GET /api/v1/event-types` (else 422 naming the item)."
)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(
        description="http(s) URL that receives a POST per event. An internationalised host is "
        "stored in its ASCII (punycode) form."
    )
    description: Annotated[str, StringConstraints(max_length=255)] = ""
    event_types: EventPatterns = Field(
        default_factory=lambda: [catalogue.ALL_PATTERN], description=EVENT_TYPES_DOC
    )


class WebhookUpdate(BaseModel):
    """Only the fields given change; `null` is refused (there is nothing to unset)."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = Field(default=None, description="As for create.")
    description: Annotated[str, StringConstraints(max_length=255), Strict()] | None = None
    event_types: EventPatterns | None = Field(
        default=None,
        description=EVENT_TYPES_DOC + " A new subscription applies to events from now on.",
    )
    active: StrictBool | None = Field(
        default=None,
        description="false: nothing is sent (deliveries already due wait). true: turns on an "
        "endpoint that was turned off or disabled after failures; its failure count restarts at "
        "0 and it is sent events recorded from now on.",
    )

    @field_validator("url", "description", "event_types", "active", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields given: a default (not given) is never validated.
        if value is None:
            raise PydanticCustomError("null", "cannot be null; leave the field out to keep it")
        return value


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    active: bool = Field(
        description="False once the endpoint was disabled after repeated failed deliveries "
        "(a `webhook.disabled` event says why)."
    )
    consecutive_failures: int = Field(
        description="Failed delivery attempts since the last successful one."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until then, deliveries are signed with the previous "
        "secret too (a second `v1` in `PenguinMails-Signature`)."
    )
    events_since: datetime = Field(
        description="Events recorded from this time on are sent: creation, or the last change "
        "of `event_types` or turning it back on."
    )
    created_at: datetime


SIGNING_DOC = (
    "Signing secret, shown only in this response. Verify `PenguinMails-Signature` "
    "(`t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>`, a second `v1` for the previous "
    "secret during a rotation's grace period: accept when any `v1` matches) with it."
)


class WebhookCreated(WebhookRead):
    secret: str = Field(description=SIGNING_DOC)


class WebhookSecretRotated(WebhookCreated):
    """The endpoint with its new secret (shown only here) and `previous_secret_expires_at`."""


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    status_code: int | None
    error: str | None
    duration_ms: float
    created_at: datetime


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str = Field(description="pending, delivered or dead (gave up after max attempts).")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[AttemptRead]


@dataclass(frozen=True)
class DeliveryFilter:
    """What the delivery log is narrowed to (each None: no filter)."""

    status: DeliveryStatus | None = None
    event_type: str | None = None  # exact, or `family.*`
    since: datetime | None = None
    until: datetime | None = None


def event_body(event: Any) -> dict[str, Any]:
    """The JSON body a receiver gets for one event."""
    return {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "workspace_id": str(event.workspace_id) if event.workspace_id else None,
        "workspace_name": event.workspace_name,
        "subject": {
            "type": event.subject_type,
            "id": str(event.subject_id) if event.subject_id else None,
        },
        "message": event.message,
        "data": event.data,
    }
