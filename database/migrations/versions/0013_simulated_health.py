"""simulated health results for sandbox servers

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # {check: {"status", "detail"}} set by POST /vps/{id}/simulate; sandbox servers only.
    op.add_column("vps_servers", sa.Column("simulated_health", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("vps_servers", "simulated_health")
