import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, IdMixin


class DnsRecord(IdMixin, Base):
    """The seed's `dns_records`, column for column, plus why a record is not verified."""

    __tablename__ = "dns_records"
    __table_args__ = (
        Index("idx_dns_inbox", "inbox_id"),
        Index("idx_dns_domain", "domain"),
        Index("ix_dns_records_next_check_at", "next_check_at"),
        UniqueConstraint("inbox_id", "purpose", name="uq_dns_records_inbox_id_purpose"),
    )

    inbox_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    record_type: Mapped[str] = mapped_column(String(10))
    record_name: Mapped[str] = mapped_column(String(255))
    record_value: Mapped[str] = mapped_column(Text)
    ttl: Mapped[int | None] = mapped_column(Integer, default=3600, server_default=text("3600"))
    verification_status: Mapped[str | None] = mapped_column(
        String(50), default="pending", server_default=text("'pending'")
    )
    last_verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime | None] = mapped_column(server_default=func.now())

    # Beyond the seed.
    purpose: Mapped[str] = mapped_column(String(32), default="", server_default="")
    required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    detail: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None]
    # When the sweep next looks at the record. Claiming a record pushes it forward by the claim
    # time, so it doubles as the lease that keeps two workers off the same record.
    next_check_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # DNS publishing (`domain.dns_publishing.states.PUBLISH`): manual (no connection), pending,
    # published, conflict or error, with what the DNS service said.
    publish_status: Mapped[str] = mapped_column(
        String(16), default="manual", server_default=text("'manual'")
    )
    publish_detail: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None]
