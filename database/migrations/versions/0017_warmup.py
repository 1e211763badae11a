"""warmup ramps, enforced sending caps and reputation history (issue 14)

Revision ID: 0017
Revises: 0016

Written against main's head 0013; branches are adding 0013/0014 in parallel, so this is rechained
onto the merged head (down_revision "0014") at merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("warmup_start_daily", sa.Integer(), nullable=True),
        sa.Column("warmup_daily_increase", sa.Integer(), nullable=True),
        sa.Column("warmup_started_at", TS, nullable=True),
        sa.Column("warmup_paused_at", TS, nullable=True),
        sa.Column("warmup_paused_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("warmup_day", sa.Integer(), server_default="0", nullable=False),
        sa.Column("hold_reason", sa.String(length=64), nullable=True),
        sa.Column("hold_clear_since", TS, nullable=True),
        sa.Column("effective_daily_limit", sa.Integer(), nullable=True),
    ):
        op.add_column("inboxes", column)

    op.create_table(
        "warmup_policies",
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("start_daily", sa.Integer(), nullable=False),
        sa.Column("daily_increase", sa.Integer(), nullable=False),
        sa.Column("domain_daily_cap", sa.Integer(), nullable=True),
        sa.Column("server_daily_cap", sa.Integer(), nullable=True),
        sa.Column("floor_daily", sa.Integer(), nullable=False),
        sa.Column("clear_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_warmup_policies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_warmup_policies_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_warmup_policies")),
    )
    op.create_index("ix_warmup_policies_tenant_id", "warmup_policies", ["tenant_id"])

    op.create_table(
        "inbox_reputation_history",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("inbox_id", sa.UUID(), nullable=False),
        sa.Column("score", sa.Numeric(precision=3, scale=2), nullable=False),
        sa.Column(
            "signals",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("computed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inbox_reputation_history_tenant_id_tenants"),
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_inbox_reputation_history_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_reputation_history")),
    )
    op.create_index(
        "idx_inbox_reputation_inbox_at", "inbox_reputation_history", ["inbox_id", "computed_at"]
    )


def downgrade() -> None:
    op.drop_table("inbox_reputation_history")
    op.drop_table("warmup_policies")
    for name in (
        "effective_daily_limit",
        "hold_clear_since",
        "hold_reason",
        "warmup_day",
        "warmup_paused_seconds",
        "warmup_paused_at",
        "warmup_started_at",
        "warmup_daily_increase",
        "warmup_start_daily",
    ):
        op.drop_column("inboxes", name)
