"""DNS manager: when each record is next checked (also the sweep's claim), one row per purpose

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dns_records",
        sa.Column(
            "next_check_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.create_index("ix_dns_records_next_check_at", "dns_records", ["next_check_at"], unique=False)
    op.create_unique_constraint(
        "uq_dns_records_inbox_id_purpose", "dns_records", ["inbox_id", "purpose"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_dns_records_inbox_id_purpose", "dns_records", type_="unique")
    op.drop_index("ix_dns_records_next_check_at", table_name="dns_records")
    op.drop_column("dns_records", "next_check_at")
