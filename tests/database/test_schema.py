"""The migrated schema: every model table exists, models and migrations agree, and the seed's
three tables match the seed column for column."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import database.models  # noqa: F401
from database.base import Base

# (column, data type as information_schema names it, nullable, default) straight from the seed.
SEED = {
    "inboxes": [
        ("id", "uuid", False, "gen_random_uuid()"),
        ("tenant_id", "uuid", False, None),
        ("workspace_id", "uuid", False, None),
        ("email_address", "character varying(255)", False, None),
        ("display_name", "character varying(255)", True, None),
        ("vps_id", "uuid", True, None),
        ("smtp_config", "jsonb", True, None),
        ("imap_config", "jsonb", True, None),
        ("warmup_enabled", "boolean", True, "false"),
        ("warmup_status", "character varying(50)", True, "'not_started'::character varying"),
        ("daily_send_limit", "integer", True, "50"),
        ("reputation_score", "numeric(3,2)", True, "0.00"),
        ("status", "character varying(50)", True, "'pending_setup'::character varying"),
        ("created_at", "timestamp with time zone", True, "now()"),
        ("updated_at", "timestamp with time zone", True, "now()"),
    ],
    "vps_servers": [
        ("id", "uuid", False, "gen_random_uuid()"),
        ("tenant_id", "uuid", False, None),
        ("provider", "character varying(50)", False, None),
        ("provider_server_id", "character varying(255)", True, None),
        # The seed says NOT NULL; a server has no address until the provider assigns one.
        ("ip_address", "inet", True, None),
        ("hostname", "character varying(255)", False, None),
        ("specs", "jsonb", True, None),
        ("status", "character varying(50)", True, "'provisioning'::character varying"),
        (
            "mail_server_status",
            "character varying(50)",
            True,
            "'not_configured'::character varying",
        ),
        ("ssl_certificate_expires", "timestamp with time zone", True, None),
        ("monitoring_enabled", "boolean", True, "true"),
        ("monthly_cost", "numeric(10,2)", True, None),
        ("created_at", "timestamp with time zone", True, "now()"),
    ],
    "dns_records": [
        ("id", "uuid", False, "gen_random_uuid()"),
        ("inbox_id", "uuid", False, None),
        ("domain", "character varying(255)", False, None),
        ("record_type", "character varying(10)", False, None),
        ("record_name", "character varying(255)", False, None),
        ("record_value", "text", False, None),
        ("ttl", "integer", True, "3600"),
        ("verification_status", "character varying(50)", True, "'pending'::character varying"),
        ("last_verified_at", "timestamp with time zone", True, None),
        ("created_at", "timestamp with time zone", True, "now()"),
    ],
}
SEED_INDEXES = {
    "inboxes": {
        "idx_inboxes_tenant": ["tenant_id"],
        "idx_inboxes_workspace": ["workspace_id"],
        "idx_inboxes_status": ["status"],
    },
    "dns_records": {"idx_dns_inbox": ["inbox_id"], "idx_dns_domain": ["domain"]},
}
SEED_FOREIGN_KEYS = {
    "inboxes": {
        ("tenant_id", "tenants"),
        ("workspace_id", "workspaces"),
        ("vps_id", "vps_servers"),
    },
    "vps_servers": {("tenant_id", "tenants")},
    "dns_records": {("inbox_id", "inboxes")},
}


def _columns(engine: Engine, table: str) -> dict[str, tuple[str, bool, str | None]]:
    sql = text(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
        """
    )
    with engine.connect() as conn:
        return {
            name: (typ, nullable, default)
            for name, typ, nullable, default in conn.execute(sql, {"t": table})
        }


def test_every_model_table_is_migrated(engine: Engine) -> None:
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models differ from the migrated schema; add a migration: {diff}"


def test_seed_tables_match_column_for_column(engine: Engine) -> None:
    for table, expected in SEED.items():
        actual = _columns(engine, table)
        for name, typ, nullable, default in expected:
            assert name in actual, f"{table}.{name} missing"
            assert actual[name] == (typ, nullable, default), f"{table}.{name}: {actual[name]}"


def test_seed_indexes_and_foreign_keys(engine: Engine) -> None:
    insp = inspect(engine)
    for table, expected in SEED_INDEXES.items():
        indexes = {ix["name"]: ix["column_names"] for ix in insp.get_indexes(table)}
        for name, cols in expected.items():
            assert indexes.get(name) == cols, f"{table}: index {name} missing or wrong"
    for table, expected_fks in SEED_FOREIGN_KEYS.items():
        fks = {
            (fk["constrained_columns"][0], fk["referred_table"])
            for fk in insp.get_foreign_keys(table)
        }
        assert expected_fks <= fks, f"{table}: {expected_fks - fks} missing"
    uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints("inboxes")}
    assert ("email_address",) in uniques
