import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text, text
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, CreatedMixin, IdMixin


class VpsServer(IdMixin, CreatedMixin, Base):
    """The seed's `vps_servers`, column for column, plus what a fleet needs (workspace, name,
    size, region). `ip_address` is nullable: a server has no address until its provider gives
    it one."""

    __tablename__ = "vps_servers"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    provider: Mapped[str] = mapped_column(String(50))
    provider_server_id: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(INET)
    hostname: Mapped[str] = mapped_column(String(255))
    specs: Mapped[dict[str, Any] | None]
    status: Mapped[str | None] = mapped_column(
        String(50), default="provisioning", server_default=text("'provisioning'")
    )
    mail_server_status: Mapped[str | None] = mapped_column(
        String(50), default="not_configured", server_default=text("'not_configured'")
    )
    ssl_certificate_expires: Mapped[datetime | None]
    monitoring_enabled: Mapped[bool | None] = mapped_column(
        Boolean, default=True, server_default=text("true")
    )
    monthly_cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))

    # Beyond the seed.
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    size: Mapped[str] = mapped_column(String(50))
    region: Mapped[str] = mapped_column(String(50))
    ipv6_address: Mapped[str | None] = mapped_column(INET)
    ssh_user: Mapped[str] = mapped_column(String(64), default="root", server_default="root")
    ssh_port: Mapped[int] = mapped_column(Integer, default=22, server_default=text("22"))
    stalwart_version: Mapped[str | None] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(String(1000))
    # Pinned on first contact (trust on first use); SSH refuses any other key afterwards.
    ssh_host_key: Mapped[str | None] = mapped_column(Text)
    # Sandbox servers only: {check: {"status", "detail"}} the health sweep reports instead of
    # "ok" (POST /vps/{id}/simulate), so alerts and webhooks can be tried before going live.
    simulated_health: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Live inboxes on this server (status not `deleting`), kept by the trigger of migration
    # 0014 in the transaction that changes them: placing an inbox reads it instead of counting.
    # Never written by the ORM.
    inbox_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
