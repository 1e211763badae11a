"""DNS publishing: connections per workspace, a default per workspace and an override per
mail domain (with its zone and MX policy), and each record's publish status

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dns_connections",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("credentials_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), server_default=sa.func.now()),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.func.now()),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_dns_connections_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name="fk_dns_connections_workspace_id_workspaces",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dns_connections"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_dns_connections_workspace_id_name"),
    )
    op.create_index("ix_dns_connections_tenant_id", "dns_connections", ["tenant_id"])
    op.create_index("ix_dns_connections_workspace_id", "dns_connections", ["workspace_id"])
    op.add_column("workspaces", sa.Column("dns_connection_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_workspaces_dns_connection_id_dns_connections",
        "workspaces",
        "dns_connections",
        ["dns_connection_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("mail_domains", sa.Column("dns_connection_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        "fk_mail_domains_dns_connection_id_dns_connections",
        "mail_domains",
        "dns_connections",
        ["dns_connection_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("mail_domains", sa.Column("zone", sa.String(255), nullable=True))
    op.add_column(
        "mail_domains",
        sa.Column("mx_policy", sa.String(16), server_default="keep", nullable=False),
    )
    op.add_column(
        "dns_records",
        sa.Column("publish_status", sa.String(16), server_default="manual", nullable=False),
    )
    op.add_column("dns_records", sa.Column("publish_detail", sa.Text(), nullable=True))
    op.add_column(
        "dns_records", sa.Column("published_at", sa.TIMESTAMP(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("dns_records", "published_at")
    op.drop_column("dns_records", "publish_detail")
    op.drop_column("dns_records", "publish_status")
    op.drop_column("mail_domains", "mx_policy")
    op.drop_column("mail_domains", "zone")
    op.drop_constraint(
        "fk_mail_domains_dns_connection_id_dns_connections", "mail_domains", type_="foreignkey"
    )
    op.drop_column("mail_domains", "dns_connection_id")
    op.drop_constraint(
        "fk_workspaces_dns_connection_id_dns_connections", "workspaces", type_="foreignkey"
    )
    op.drop_column("workspaces", "dns_connection_id")
    op.drop_index("ix_dns_connections_workspace_id", "dns_connections")
    op.drop_index("ix_dns_connections_tenant_id", "dns_connections")
    op.drop_table("dns_connections")
