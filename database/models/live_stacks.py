from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base


class LiveStack(Base):
    """What the live engine remembers of a stack's last successful `up` beside its Pulumi state
    (which lives in the Pulumi backend): the run's fingerprint, so an `up` of the same one is
    skipped without starting the CLI, and the outputs that skipped `up` reports to the results
    pipeline. A row exists only while such an `up` is the stack's last run
    (automation/unchanged.py)."""

    __tablename__ = "live_stacks"

    stack_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    outputs: Mapped[dict[str, Any]]
    resources: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    updated_at: Mapped[datetime | None] = mapped_column(
        server_default=func.now(), onupdate=func.now()
    )
