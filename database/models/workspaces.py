import uuid

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, EncryptedText, IdMixin, TimestampsMixin


class Workspace(IdMixin, TimestampsMixin, Base):
    """A workspace's fleet is one Pulumi stack (`stack_name`), run by the sandbox or live engine."""

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_workspaces_tenant_id_name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    sandbox: Mapped[bool] = mapped_column(Boolean, default=True)
    stack_name: Mapped[str] = mapped_column(String(255), unique=True)
    # The key pair the fleet's servers trust; the private half never leaves the database
    # except as Pulumi secret config.
    ssh_public_key: Mapped[str | None] = mapped_column(Text)
    # Deferred, as one group: decrypted only when read, both in one statement.
    ssh_private_key_encrypted: Mapped[str | None] = mapped_column(
        EncryptedText, deferred=True, deferred_group="secrets"
    )
    stalwart_admin_password_encrypted: Mapped[str | None] = mapped_column(
        EncryptedText, deferred=True, deferred_group="secrets"
    )
    # Where the records of its mail domains are published unless a domain says otherwise;
    # none: by hand (`manual`).
    dns_connection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("dns_connections.id", ondelete="SET NULL", use_alter=True)
    )

    @property
    def engine(self) -> str:
        return "sandbox" if self.sandbox else "live"
