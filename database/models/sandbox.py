from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base


class SandboxStack(Base):
    """What the sandbox engine remembers of one stack between runs: per resource its simulated
    id and outputs and a keyed digest of each input (never the inputs: they hold secrets). Shared
    through Postgres so any worker machine continues where another stopped; `version` makes
    concurrent writers of one stack fail instead of losing an update."""

    __tablename__ = "sandbox_stacks"

    stack_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_id: Mapped[int] = mapped_column(BigInteger, default=1, server_default=text("1"))
    resources: Mapped[dict[str, Any]]
    outputs: Mapped[dict[str, Any]]
    # The last successful `up`'s fingerprint, when it left nothing to retry; a run of the same
    # fingerprint is skipped (automation/unchanged.py).
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(
        server_default=func.now(), onupdate=func.now()
    )
