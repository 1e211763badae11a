import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

EventType = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?$")
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(
        description="http(s) URL that receives a POST per event. An internationalised host is "
        "stored in its ASCII (punycode) form."
    )
    description: Annotated[str, StringConstraints(max_length=255)] = ""
    event_types: list[EventType] = Field(
        default_factory=list,
        max_length=50,
        description="Event types to send, exact (`health.alert`) or by prefix (`health.*`). "
        "Empty: every event.",
    )


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
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="Signing secret, shown only in this response. Verify `PenguinMails-Signature` "
        "(t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>'>) with it."
    )


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


def event_body(event: Any) -> dict[str, Any]:
    """The JSON body a receiver gets for one event."""
    return {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat() if event.created_at else None,
        "workspace_id": str(event.workspace_id) if event.workspace_id else None,
        "subject": {
            "type": event.subject_type,
            "id": str(event.subject_id) if event.subject_id else None,
        },
        "message": event.message,
        "data": event.data,
    }
