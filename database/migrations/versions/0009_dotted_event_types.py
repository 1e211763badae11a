"""event types follow one dotted scheme (`family.action`): stored events and webhook
subscriptions renamed; an empty subscription (which meant every event) becomes `["*"]`

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here (not imported from domain.events.catalogue): a migration means what it meant.
RENAMED = {
    "dns_verified": "dns.verified",
    "dns_regressed": "dns.regressed",
    "server_ready": "server.ready",
    "server_deleted": "server.deleted",
    "inbox_deleted": "inbox.deleted",
    "operation_failed": "operation.failed",
}


def _rename(mapping: dict[str, str]) -> None:
    values = ", ".join(f"('{old}', '{new}')" for old, new in mapping.items())
    olds = ", ".join(f"'{old}'" for old in mapping)
    op.execute(
        sa.text(
            f"UPDATE events e SET type = m.new FROM (VALUES {values}) AS m(old, new) "  # noqa: S608
            "WHERE e.type = m.old"
        )
    )
    # Each subscription's patterns renamed, deduplicated and sorted (as the API stores them).
    op.execute(
        sa.text(
            f"""
            UPDATE webhook_endpoints w SET event_types = (
              SELECT coalesce(jsonb_agg(p ORDER BY p), '[]'::jsonb) FROM (
                SELECT DISTINCT coalesce(m.new, t.pattern) AS p
                FROM jsonb_array_elements_text(w.event_types) AS t(pattern)
                LEFT JOIN (VALUES {values}) AS m(old, new) ON m.old = t.pattern
              ) renamed
            )
            WHERE jsonb_typeof(w.event_types) = 'array' AND w.event_types ?| ARRAY[{olds}]
            """  # noqa: S608 - literals of this file only
        )
    )


def upgrade() -> None:
    _rename(RENAMED)
    op.execute(
        sa.text("UPDATE webhook_endpoints SET event_types = '[\"*\"]' WHERE event_types = '[]'")
    )
    op.alter_column("webhook_endpoints", "event_types", server_default=sa.text("'[\"*\"]'::jsonb"))


def downgrade() -> None:
    op.alter_column("webhook_endpoints", "event_types", server_default=sa.text("'[]'::jsonb"))
    op.execute(
        sa.text("UPDATE webhook_endpoints SET event_types = '[]' WHERE event_types = '[\"*\"]'")
    )
    _rename({new: old for old, new in RENAMED.items()})
