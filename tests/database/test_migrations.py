"""Data migrations against rows as the code before them wrote them: a scratch database on the
test server, migrated to the revision before, filled, then upgraded (and downgraded back)."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url

from database import migrate


@pytest.fixture
def scratch(database_url: str) -> Iterator[tuple[str, Engine]]:
    """An empty database of its own (dropped afterwards) and an engine on it."""
    url = make_url(database_url)
    name = f"{url.database}_mig_{uuid.uuid4().hex[:6]}"
    admin = create_engine(
        url.set(database="postgres"), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    scratch_url = url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(scratch_url, poolclass=pool.NullPool)
    try:
        yield scratch_url, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _one(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def _downgrade(url: str, revision: str) -> None:
    cfg = migrate.alembic_config(url)
    command.downgrade(cfg, revision)


def test_0009_renames_stored_event_types_and_subscriptions(scratch: tuple[str, Engine]) -> None:
    url, engine = scratch
    migrate.upgrade(url, "0008")
    tenant = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'old')"), {"t": tenant})
        for type_ in ("dns_verified", "dns_regressed", "server_ready", "health.alert"):
            conn.execute(
                text("INSERT INTO events (tenant_id, type, message) VALUES (:t, :type, '')"),
                {"t": tenant, "type": type_},
            )
        for subscription in (
            '["dns_verified", "health.*"]',
            '["dns_verified", "dns.verified"]',
            "[]",
            '"health.*"',  # not a list (written around the API): left alone
            '["helth.alert"]',  # unknown before, unknown after
        ):
            conn.execute(
                text(
                    "INSERT INTO webhook_endpoints (tenant_id, url, event_types, "
                    "secret_encrypted) VALUES (:t, :u, CAST(:e AS jsonb), 'x')"
                ),
                {"t": tenant, "u": f"https://h.example/{subscription}", "e": subscription},
            )

    migrate.upgrade(url, "0009")

    def types() -> list[str]:
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT type FROM events")).scalars())

    def subscriptions() -> list[Any]:
        with engine.connect() as conn:
            rows = conn.execute(
                text('SELECT event_types FROM webhook_endpoints ORDER BY url COLLATE "C"')
            )
            return list(rows.scalars())

    assert types() == ["dns.regressed", "dns.verified", "health.alert", "server.ready"]
    assert subscriptions() == [
        "health.*",
        ["dns.verified"],
        ["dns.verified", "health.*"],
        ["helth.alert"],
        ["*"],
    ]
    default = (
        "INSERT INTO webhook_endpoints (tenant_id, url, secret_encrypted) VALUES (:t, 'd', 'x')"
    )
    with engine.begin() as conn:
        conn.execute(text(default), {"t": tenant})
    assert _one(engine, "SELECT event_types FROM webhook_endpoints WHERE url = 'd'") == ["*"]

    _downgrade(url, "0008")
    assert types() == ["dns_regressed", "dns_verified", "health.alert", "server_ready"]
    assert ["dns_verified", "health.*"] in subscriptions() and [] in subscriptions()


def test_0010_copies_workspace_names_and_keeps_ids_after_deletion(
    scratch: tuple[str, Engine],
) -> None:
    url, engine = scratch
    migrate.upgrade(url, "0009")
    tenant, workspace = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO workspaces (id, tenant_id, name, sandbox, stack_name) "
                "VALUES (:w, :t, 'outbound-eu', true, 'ws-old')"
            ),
            {"w": workspace, "t": tenant},
        )
        conn.execute(
            text(
                "INSERT INTO events (tenant_id, workspace_id, type, message) "
                "VALUES (:t, :w, 'server.ready', '')"
            ),
            {"t": tenant, "w": workspace},
        )
    migrate.upgrade(url, "0010")
    assert _one(engine, "SELECT workspace_name FROM events") == "outbound-eu"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM workspaces WHERE id = :w"), {"w": workspace})
    assert _one(engine, "SELECT workspace_id FROM events") == workspace

    _downgrade(url, "0009")  # the foreign key again: a dangling id becomes NULL, as it was
    assert _one(engine, "SELECT workspace_id FROM events") is None


def test_0011_starts_existing_endpoints_where_the_fan_out_did(
    scratch: tuple[str, Engine],
) -> None:
    url, engine = scratch
    migrate.upgrade(url, "0010")
    tenant = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:t, 'old')"), {"t": tenant})
        conn.execute(
            text(
                "INSERT INTO webhook_endpoints (tenant_id, url, secret_encrypted, created_at) "
                "VALUES (:t, 'https://h.example/', 'x', '2026-01-02T03:04:05Z')"
            ),
            {"t": tenant},
        )
    migrate.upgrade(url, "0011")
    assert _one(engine, "SELECT events_since = created_at FROM webhook_endpoints") is True
