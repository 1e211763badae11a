"""skipping unchanged stacks: the fingerprint of a stack's last successful up (sandbox_stacks),
and for live stacks that fingerprint with the run's outputs (live_stacks)

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a stack migrated from before has no fingerprint, so its next up runs.
    op.add_column("sandbox_stacks", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.create_table(
        "live_stacks",
        sa.Column("stack_name", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("outputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("resources", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("stack_name", name=op.f("pk_live_stacks")),
    )


def downgrade() -> None:
    op.drop_table("live_stacks")
    op.drop_column("sandbox_stacks", "fingerprint")
