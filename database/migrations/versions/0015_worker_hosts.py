"""worker heartbeats by host (multi-machine deployments)

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_hosts",
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pulumi_backend", sa.String(32), nullable=False),
        sa.Column("backend_local", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("host", "pid", "started_at", name=op.f("pk_worker_hosts")),
    )
    op.create_index("ix_worker_hosts_last_seen_at", "worker_hosts", ["last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_hosts_last_seen_at", table_name="worker_hosts")
    op.drop_table("worker_hosts")
