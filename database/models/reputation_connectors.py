import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, EncryptedText, IdMixin, TimestampsMixin


class ReputationConnector(IdMixin, TimestampsMixin, Base):
    """An optional external reputation source of a workspace (`kind`: google_postmaster,
    microsoft_snds); none exist by default. The credentials (a Postmaster OAuth access token,
    an SNDS automated-access key) are one JSON object, encrypted, never returned or logged."""

    __tablename__ = "reputation_connectors"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", name="uq_reputation_connectors_workspace_id_kind"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    credentials_encrypted: Mapped[str] = mapped_column(EncryptedText, deferred=True)
    last_fetched_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")


class ReputationFigure(Base):
    """The latest figures a connector fetched for one subject (a domain for Postmaster, an IP
    for SNDS). A figure that could not be read is null: the signal is unknown, never clean."""

    __tablename__ = "reputation_figures"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    figures: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=text("'{}'::jsonb")
    )
    fetched_at: Mapped[datetime] = mapped_column()
