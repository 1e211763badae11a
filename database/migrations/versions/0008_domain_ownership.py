"""domains belong to a tenant (domain_owners, domain_claims); a case-insensitive unique index on
inbox addresses; idempotency keys indexed by age for the purge

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "domain_claims",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("workspace_id", sa.UUID(), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_domain_claims_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_domain_claims_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_claims")),
    )
    op.create_index(op.f("ix_domain_claims_tenant_id"), "domain_claims", ["tenant_id"])
    op.create_index(op.f("ix_domain_claims_workspace_id"), "domain_claims", ["workspace_id"])
    op.create_table(
        "domain_owners",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("claim_id", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        sa.Column(
            "updated_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_domain_owners_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["claim_id"],
            ["domain_claims.id"],
            name=op.f("fk_domain_owners_claim_id_domain_claims"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_domain_owners")),
    )
    op.create_index(op.f("ix_domain_owners_tenant_id"), "domain_owners", ["tenant_id"])
    # Today's domains go to the tenant that added each first.
    op.execute(
        """INSERT INTO domain_owners (name, tenant_id)
        SELECT DISTINCT ON (lower(name)) lower(name), tenant_id
        FROM mail_domains ORDER BY lower(name), created_at, id"""
    )
    op.create_index(
        "uq_inboxes_lower_email_address",
        "inboxes",
        [sa.text("lower(email_address)")],
        unique=True,
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("uq_inboxes_lower_email_address", table_name="inboxes")
    op.drop_index(op.f("ix_domain_owners_tenant_id"), table_name="domain_owners")
    op.drop_table("domain_owners")
    op.drop_index(op.f("ix_domain_claims_workspace_id"), table_name="domain_claims")
    op.drop_index(op.f("ix_domain_claims_tenant_id"), table_name="domain_claims")
    op.drop_table("domain_claims")
