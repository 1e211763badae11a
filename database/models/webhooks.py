import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, CreatedMixin, EncryptedText, IdMixin, TimestampsMixin


class WebhookEndpoint(IdMixin, TimestampsMixin, Base):
    __tablename__ = "webhook_endpoints"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # Event types to send: "health.alert", a family "health.*", or "*" for every type
    # (`domain.events.catalogue`); an empty list matches nothing.
    event_types: Mapped[list[Any]] = mapped_column(
        default=lambda: ["*"], server_default=sql("'[\"*\"]'::jsonb")
    )
    # Deferred: reading an endpoint never decrypts its secret, so a secret that no longer
    # decrypts fails its deliveries only, never GET/list of the tenant's endpoints.
    secret_encrypted: Mapped[str] = mapped_column(EncryptedText, deferred=True)
    # The secret before the last rotation: deliveries carry its signature too until
    # `previous_secret_expires_at` (then the delivery job forgets it).
    previous_secret_encrypted: Mapped[str | None] = mapped_column(EncryptedText, deferred=True)
    previous_secret_expires_at: Mapped[datetime | None]
    # False once the delivery job disabled it (a `webhook.disabled` event says why), or the
    # tenant turned it off (PATCH).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sql("true"))
    # Events recorded from this time on are fanned out to it: its creation, a change of
    # `event_types`, or being turned back on (so it never gets the fan-out window's backlog).
    events_since: Mapped[datetime] = mapped_column(server_default=func.now())
    # Failed attempts since the last successful one; reset by any 2xx.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=sql("0"))


class WebhookDelivery(IdMixin, TimestampsMixin, Base):
    """The outbox: one row per event per endpoint, fanned out from `events` by the delivery job."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    # pending (waiting for an attempt) | delivered | dead (gave up)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=sql("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=sql("now()"))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(IdMixin, CreatedMixin, Base):
    """The delivery log: every try, its answer or error and how long it took."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)
