import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, EncryptedText, IdMixin


class Inbox(IdMixin, Base):
    """The seed's `inboxes`, column for column, plus the mailbox password (encrypted)."""

    __tablename__ = "inboxes"
    __table_args__ = (
        Index("idx_inboxes_tenant", "tenant_id"),
        Index("idx_inboxes_workspace", "workspace_id"),
        Index("idx_inboxes_status", "status"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id"))
    email_address: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    vps_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("vps_servers.id"))
    smtp_config: Mapped[dict[str, Any] | None]
    imap_config: Mapped[dict[str, Any] | None]
    warmup_enabled: Mapped[bool | None] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    warmup_status: Mapped[str | None] = mapped_column(
        String(50), default="not_started", server_default=text("'not_started'")
    )
    daily_send_limit: Mapped[int | None] = mapped_column(
        Integer, default=50, server_default=text("50")
    )
    reputation_score: Mapped[Decimal | None] = mapped_column(
        Numeric(3, 2), default=Decimal("0.00"), server_default=text("0.00")
    )
    status: Mapped[str | None] = mapped_column(
        String(50), default="pending_setup", server_default=text("'pending_setup'")
    )
    created_at: Mapped[datetime | None] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(
        server_default=func.now(), onupdate=func.now()
    )

    # Beyond the seed.
    # Deferred: decrypted only when read (a list of inboxes never returns it).
    password_encrypted: Mapped[str | None] = mapped_column(EncryptedText, deferred=True)
    quota_mb: Mapped[int] = mapped_column(Integer, default=2048, server_default=text("2048"))


# Addresses compare case-insensitively (the create's duplicate check): the seed's
# UNIQUE(email_address), kept for the seed's sake, is case-sensitive and no index covered lower().
Index("uq_inboxes_lower_email_address", func.lower(Inbox.email_address), unique=True)
