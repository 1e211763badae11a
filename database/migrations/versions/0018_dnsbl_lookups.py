"""blocklist answers shared by every worker (the query budget)

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dnsbl_lookups",
        sa.Column("zone", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "codes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("checked_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("zone", "subject", name=op.f("pk_dnsbl_lookups")),
    )


def downgrade() -> None:
    op.drop_table("dnsbl_lookups")
