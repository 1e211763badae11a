import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base, IdMixin, TimestampsMixin


class Tenant(IdMixin, TimestampsMixin, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(255))


class ApiKey(IdMixin, TimestampsMixin, Base):
    """Only a hash of the key is kept; `prefix` is the public part shown to identify a key."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="default")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
