"""webhook endpoints can be changed: `events_since`, from when events are fanned out to one
(its creation, a new subscription, or being turned back on)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column(
            "events_since",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    # What the fan-out used until now.
    op.execute(
        sa.text("UPDATE webhook_endpoints SET events_since = coalesce(created_at, events_since)")
    )


def downgrade() -> None:
    op.drop_column("webhook_endpoints", "events_since")
