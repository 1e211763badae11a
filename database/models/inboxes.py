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

    # Warmup (docs/warmup.md). The ramp is computed from these dates, never counted by sweeps:
    # day = 1 + whole days of (now or paused_at) - started_at - paused_seconds.
    warmup_start_daily: Mapped[int | None] = mapped_column(Integer)  # per-inbox override
    warmup_daily_increase: Mapped[int | None] = mapped_column(Integer)  # per-inbox override
    warmup_started_at: Mapped[datetime | None]
    warmup_paused_at: Mapped[datetime | None]  # start of the ramp day the pause discarded
    warmup_paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    warmup_day: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A hold: trouble seen (listing, DNS, critical server); the cap stays at the policy's floor
    # until the cause has been clear for the policy's clear_seconds.
    hold_reason: Mapped[str | None] = mapped_column(String(64))
    hold_clear_since: Mapped[datetime | None]
    # What the mail server enforces (stack config `dailyLimit`); None until first computed.
    effective_daily_limit: Mapped[int | None] = mapped_column(Integer)


# Addresses compare case-insensitively (the create's duplicate check): the seed's
# UNIQUE(email_address), kept for the seed's sake, is case-sensitive and no index covered lower().
Index("uq_inboxes_lower_email_address", func.lower(Inbox.email_address), unique=True)
# generate_for_server: the inboxes of a server, and the live inboxes of its domains (0020).
Index("ix_inboxes_vps_id", Inbox.vps_id)
Index(
    "ix_inboxes_workspace_domain",
    Inbox.workspace_id,
    func.lower(func.split_part(Inbox.email_address, "@", 2)),
)
