import uuid

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, CreatedMixin, EncryptedText


class IdempotencyKey(CreatedMixin, Base):
    """The first answer to a create made with an `Idempotency-Key`, replayed for repeats."""

    __tablename__ = "idempotency_keys"
    # The purge deletes by age (`idempotency.service.purge_expired`).
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    # The answer may carry credentials shown once (a new inbox's password): encrypted at rest.
    response_encrypted: Mapped[str | None] = mapped_column(EncryptedText)
