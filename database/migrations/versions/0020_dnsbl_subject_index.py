"""blocklist answers found by subject

Revision ID: 0020
Revises: 0019

An inbox create decides a hold from its domain's blocklist answers in the statement that
inserts it (domain.warmup.admission), and the warmup sweep reads the answers of a workspace's
domains (domain.health.blocklists.listed_domains): both look rows up by `subject`, which the
primary key (zone, subject) cannot serve, so each was a scan of every list's every answer.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_dnsbl_lookups_subject", "dnsbl_lookups", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_dnsbl_lookups_subject", table_name="dnsbl_lookups")
