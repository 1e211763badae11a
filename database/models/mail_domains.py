import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, EncryptedText, IdMixin, TimestampsMixin


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
    dkim_private_key_encrypted: Mapped[str] = mapped_column(EncryptedText)
