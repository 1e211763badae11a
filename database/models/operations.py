import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, IdMixin, TimestampsMixin


class Operation(IdMixin, TimestampsMixin, Base):
    """One run of a workspace's stack: the durable queue entry and its audit record."""

    __tablename__ = "operations"
    __table_args__ = (
        # Postgres itself guarantees that one stack never has two runs at once.
        Index(
            "uq_operations_one_running_per_workspace",
            "workspace_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
        ),
        # At most one queued `up` per stack: new changes join it (coalescing).
        Index(
            "uq_operations_one_queued_up_per_workspace",
            "workspace_id",
            unique=True,
            postgresql_where=text("status = 'queued' AND kind = 'up'"),
        ),
        Index("ix_operations_status_run_after", "status", "run_after"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # up, preview, refresh, destroy
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    reason: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    # Changes that joined this queued `up` (operations.enqueue). A claim compares the count its
    # statement's snapshot saw with the row it locked: a join committed in between means the
    # desired state it loaded lacks that change (automation/queue.py `_claim_and_load`).
    joins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    run_after: Mapped[datetime] = mapped_column(server_default=text("now()"))
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    resource_changes: Mapped[list[Any] | None]
    summary: Mapped[dict[str, Any] | None]
    log: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
