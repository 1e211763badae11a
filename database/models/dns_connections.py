import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, EncryptedText, IdMixin, TimestampsMixin


class DnsConnection(IdMixin, TimestampsMixin, Base):
    """How a workspace writes records into a DNS service (`kind`: rfc2136, lexicon, cloudflare,
    hetzner). `settings` are the plain options (server, key name, provider...); the secrets
    (TSIG secret, API tokens) are one JSON object, encrypted, never returned."""

    __tablename__ = "dns_connections"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_dns_connections_workspace_id_name"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'::jsonb")
    )
    # Deferred: listing connections never decrypts their credentials.
    credentials_encrypted: Mapped[str] = mapped_column(EncryptedText, deferred=True)
