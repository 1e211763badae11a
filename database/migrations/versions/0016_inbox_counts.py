"""a kept count of live inboxes per server

Revision ID: 0016
Revises: 0015

`vps_servers.inbox_count` is the number of the server's inboxes whose status is not `deleting`
(what placing an inbox used to count with a GROUP BY on every create). A trigger on `inboxes`
keeps it in the transaction that inserts, moves, deletes or un-deletes an inbox, so no code
path can forget it. Addresses are stored lowercased, so the unique index on
`lower(email_address)` is the duplicate check (the insert's ON CONFLICT).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION vps_servers_keep_inbox_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.vps_id IS NOT NULL AND coalesce(OLD.status <> 'deleting', false) THEN
            UPDATE vps_servers SET inbox_count = inbox_count - 1 WHERE id = OLD.vps_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.vps_id IS NOT NULL AND coalesce(NEW.status <> 'deleting', false) THEN
            UPDATE vps_servers SET inbox_count = inbox_count + 1 WHERE id = NEW.vps_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column(
        "vps_servers",
        sa.Column("inbox_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(
        "UPDATE vps_servers s SET inbox_count = c.n FROM (SELECT vps_id, count(*) AS n "
        "FROM inboxes WHERE status <> 'deleting' AND vps_id IS NOT NULL GROUP BY vps_id) c "
        "WHERE c.vps_id = s.id"
    )
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER inboxes_keep_server_inbox_count AFTER INSERT OR DELETE ON inboxes "
        "FOR EACH ROW EXECUTE FUNCTION vps_servers_keep_inbox_count()"
    )
    op.execute(
        "CREATE TRIGGER inboxes_keep_server_inbox_count_on_update "
        "AFTER UPDATE OF vps_id, status ON inboxes FOR EACH ROW "
        "WHEN (OLD.vps_id IS DISTINCT FROM NEW.vps_id "
        "OR coalesce(OLD.status <> 'deleting', false) "
        "IS DISTINCT FROM coalesce(NEW.status <> 'deleting', false)) "
        "EXECUTE FUNCTION vps_servers_keep_inbox_count()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER inboxes_keep_server_inbox_count_on_update ON inboxes")
    op.execute("DROP TRIGGER inboxes_keep_server_inbox_count ON inboxes")
    op.execute("DROP FUNCTION vps_servers_keep_inbox_count()")
    op.drop_column("vps_servers", "inbox_count")
