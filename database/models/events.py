import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, CreatedMixin, IdMixin


class Event(IdMixin, CreatedMixin, Base):
    """Something that happened, told to the user (`domain.events.catalogue`: dns.verified,
    health.alert, provisioning results).

    `workspace_id` has no foreign key, on purpose: an event outlives its workspace and keeps
    the id and the name (`workspace_name`, copied when the event is written). Tenant scoping is
    `tenant_id`'s."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_tenant_id_created_at", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    workspace_name: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID | None]
    message: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
