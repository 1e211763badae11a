import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, CreatedMixin, EncryptedText, IdMixin, TimestampsMixin


class MailDomain(IdMixin, TimestampsMixin, Base):
    """A domain the workspace sends from, with its DKIM key pair (private half encrypted)."""

    __tablename__ = "mail_domains"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_mail_domains_workspace_id_name"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), index=True)
    dkim_selector: Mapped[str] = mapped_column(String(63))
    dkim_algorithm: Mapped[str] = mapped_column(String(16), default="rsa")
    dkim_public_key: Mapped[str] = mapped_column(Text)
    dkim_private_key_encrypted: Mapped[str] = mapped_column(EncryptedText, deferred=True)
    # DNS publishing: a connection of its own (else the workspace's default), the zone the
    # records go in (found by walking SOA records up from the name when unset), and whether a
    # foreign MX is replaced (`replace`) or reported as a conflict (`keep`).
    dns_connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dns_connections.id", ondelete="SET NULL")
    )
    zone: Mapped[str | None] = mapped_column(String(255))
    mx_policy: Mapped[str] = mapped_column(String(16), default="keep", server_default="keep")


class DomainOwner(TimestampsMixin, Base):
    """Which tenant may add inboxes on a domain: the first to add one, or the last to prove
    control of its DNS through a verified claim. One row per domain (lower-case A-label)."""

    __tablename__ = "domain_owners"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    # The verified claim that made this tenant the owner; null for the first tenant.
    claim_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("domain_claims.id", ondelete="SET NULL")
    )


class DomainClaim(IdMixin, CreatedMixin, Base):
    """A tenant's request to own a domain, proven by publishing `token` in a TXT record."""

    __tablename__ = "domain_claims"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(String(255))
    token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None]
