"""indexes for generating a server's DNS records: inboxes by server, inboxes by mail domain

Revision ID: 0021
Revises: 0020

`generate_for_server` reads the inboxes of one server, then every live inbox of their domains in
the workspace (the SPF value lists all their servers). Neither had an index: both scanned every
inbox of the tenant, and the domain match computed `lower(split_part(email_address, '@', 2))`
for each, so generating records for a fleet cost servers x inboxes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_inboxes_vps_id ON inboxes (vps_id)")
    op.execute(
        "CREATE INDEX ix_inboxes_workspace_domain ON inboxes "
        "(workspace_id, lower(split_part(email_address, '@', 2)))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_inboxes_workspace_domain")
    op.execute("DROP INDEX ix_inboxes_vps_id")
