"""pinned SSH host keys

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("vps_servers", sa.Column("ssh_host_key", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("vps_servers", "ssh_host_key")
