import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, Numeric, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, IdMixin


class WarmupPolicy(Base):
    """A workspace's warmup and cap policy; no row means the documented defaults
    (`domain.warmup.policy.DEFAULTS`, docs/warmup.md). Each inbox may override the ramp."""

    __tablename__ = "warmup_policies"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    start_daily: Mapped[int] = mapped_column(Integer)
    daily_increase: Mapped[int] = mapped_column(Integer)
    domain_daily_cap: Mapped[int | None] = mapped_column(Integer)
    server_daily_cap: Mapped[int | None] = mapped_column(Integer)
    floor_daily: Mapped[int] = mapped_column(Integer)
    clear_seconds: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class ReputationSnapshot(IdMixin, Base):
    """One computed reputation of an inbox, kept when the score or its signals changed."""

    __tablename__ = "inbox_reputation_history"
    __table_args__ = (Index("idx_inbox_reputation_inbox_at", "inbox_id", "computed_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    inbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    score: Mapped[Decimal] = mapped_column(Numeric(3, 2))
    signals: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    computed_at: Mapped[datetime]
