from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import Base


class WorkerHost(Base):
    """One running worker process, as its host last reported it. Upserted by the process's
    heartbeat loop (`domain.hosts.service.beat`), pruned once stale. The refusal to run live
    stacks on a machine-local Pulumi backend while another host is registered, and the
    preflight's finding, are read from here (`domain.hosts.service.shared_state_finding`)."""

    __tablename__ = "worker_hosts"
    # The prune and the "who is alive" reads go by age.
    __table_args__ = (Index("ix_worker_hosts_last_seen_at", "last_seen_at"),)

    host: Mapped[str] = mapped_column(String(253), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The process's start: with host and pid, one row per process even when a pid is reused.
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Which kind of Pulumi backend the process's live engine uses (`file`, `postgres`, `s3`,
    # `azblob`, `gs`, `cloud`), and whether that state lives on this machine only. Never the
    # URL: it may hold credentials.
    pulumi_backend: Mapped[str] = mapped_column(String(32))
    backend_local: Mapped[bool] = mapped_column(Boolean)
