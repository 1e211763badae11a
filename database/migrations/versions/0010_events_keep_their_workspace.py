"""events keep their workspace: no foreign key (it set workspace_id NULL when the workspace was
deleted), and the workspace's name copied into the event

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("fk_events_workspace_id_workspaces"), "events", type_="foreignkey")
    op.add_column("events", sa.Column("workspace_name", sa.String(length=255), nullable=True))
    op.execute(
        sa.text(
            "UPDATE events e SET workspace_name = w.name FROM workspaces w "
            "WHERE w.id = e.workspace_id"
        )
    )


def downgrade() -> None:
    op.drop_column("events", "workspace_name")
    op.execute(
        sa.text(
            "UPDATE events e SET workspace_id = NULL WHERE e.workspace_id IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.id = e.workspace_id)"
        )
    )
    op.create_foreign_key(
        op.f("fk_events_workspace_id_workspaces"),
        "events",
        "workspaces",
        ["workspace_id"],
        ["id"],
        ondelete="SET NULL",
    )
