import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, IdMixin


class HealthCheckResult(IdMixin, Base):
    """History: one row per check per server per sweep, deleted after the retention period."""

    __tablename__ = "health_check_results"
    __table_args__ = (
        Index("ix_health_check_results_vps_id_checked_at", "vps_id", "checked_at"),
        Index("ix_health_check_results_checked_at", "checked_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    vps_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vps_servers.id", ondelete="CASCADE"))
    check: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    checked_at: Mapped[datetime] = mapped_column(server_default=func.now())


class HealthCheckState(Base):
    """The latest result per server and check (cheap to read), plus what the user was last told
    about it, so an alert fires once per change of state and a recovery once when it clears."""

    __tablename__ = "health_check_states"

    vps_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vps_servers.id", ondelete="CASCADE"), primary_key=True
    )
    check: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    checked_at: Mapped[datetime]
    status_since: Mapped[datetime]
    # ok | warning | critical; never unknown (a failed measurement tells the user nothing).
    notified_status: Mapped[str | None] = mapped_column(String(16))


class DnsblLookup(Base):
    """The last answer of one blocklist about one address or domain, shared by every server,
    domain and worker: public DNS data, not a tenant's (no tenant_id). A worker claims a row
    (`claimed_until`) before asking, so each list is asked at most once per interval."""

    __tablename__ = "dnsbl_lookups"
    # Looked up by subject (a domain's answers from every list): the key leads with the zone.
    __table_args__ = (Index("ix_dnsbl_lookups_subject", "subject"),)

    zone: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    codes: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    detail: Mapped[str] = mapped_column(Text, server_default="")
    checked_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
