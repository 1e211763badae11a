"""`Idempotency-Key` on every create: a repeat with the same key and body replays the first
answer (one row), another body is refused, and answers expire after `idempotency_ttl_seconds`:
an expired key, purged or not, runs the create again."""

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from database.models.idempotency import IdempotencyKey
from database.models.mail_domains import DomainClaim
from database.models.workspaces import Workspace
from database.session import session_scope
from domain.idempotency import service as idempotency
from kit.time import utcnow
from scheduler.jobs import idempotency_purge
from settings import get_settings
from tests.support.factories import TenantWithKey, create_tenant, create_workspace

TTL = get_settings().idempotency_ttl_seconds


def _workspaces(session: Session, tenant: TenantWithKey) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Workspace)
            .where(Workspace.tenant_id == tenant.tenant.id)
        )
        or 0
    )


def _post(client: TestClient, tenant: TenantWithKey, url: str, body: Any, key: str) -> Any:
    return client.post(url, json=body, headers={**tenant.headers, "Idempotency-Key": key})


def _age(session: Session, tenant: TenantWithKey, key: str, seconds: float) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.tenant_id == tenant.tenant.id, IdempotencyKey.key == key)
        .values(created_at=utcnow() - timedelta(seconds=seconds))
    )
    session.expire_all()


def test_a_repeated_workspace_create_replays_the_first_answer(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    body = {"name": "outbound", "sandbox": True}
    first = _post(client, tenant, "/api/v1/workspaces", body, "ws-1")
    second = _post(client, tenant, "/api/v1/workspaces", body, "ws-1")
    assert first.status_code == second.status_code == 201, second.text
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _workspaces(session, tenant) == 1
    # Without a key a repeat is still the name conflict.
    again = client.post("/api/v1/workspaces", json=body, headers=tenant.headers)
    assert again.status_code == 409


def test_the_same_key_with_another_body_is_refused(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    assert _post(client, tenant, "/api/v1/workspaces", {"name": "a"}, "k").status_code == 201
    other = _post(client, tenant, "/api/v1/workspaces", {"name": "b"}, "k")
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert "different request body" in other.json()["error"]["message"]
    assert _workspaces(session, tenant) == 1


def test_keys_are_per_tenant(client: TestClient, session: Session) -> None:
    a, b = create_tenant(session), create_tenant(session)
    body = {"name": "same"}
    first = _post(client, a, "/api/v1/workspaces", body, "shared")
    second = _post(client, b, "/api/v1/workspaces", body, "shared")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second.headers


def test_server_and_inbox_creates_replay(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    inbox = {
        "email_address": f"x@{uuid.uuid4().hex[:8]}.example",
        "display_name": "X",
        "vps_provider": "hetzner",
        "vps_size": "professional",
    }
    server = {"provider": "hetzner", "size": "professional", "region": "eu-central"}
    for url, body in (
        (f"/api/v1/workspaces/{ws}/inboxes", inbox),
        (f"/api/v1/workspaces/{ws}/vps", server),
    ):
        first = _post(client, tenant, url, body, f"key-{url}")
        second = _post(client, tenant, url, body, f"key-{url}")
        assert first.status_code == second.status_code == 202, first.text
        assert second.json() == first.json()


def test_an_expired_key_runs_the_create_again(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    url = f"/api/v1/workspaces/{ws}/domain-claims"
    body = {"domain": f"d{uuid.uuid4().hex[:8]}.example"}
    first = _post(client, tenant, url, body, "claim")
    # Within the TTL: replayed.
    _age(session, tenant, "claim", TTL - 60)
    assert _post(client, tenant, url, body, "claim").json()["id"] == first.json()["id"]
    # Past it, before any purge: a new claim, and the key now answers with that one.
    _age(session, tenant, "claim", TTL + 1)
    second = _post(client, tenant, url, body, "claim")
    assert second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    third = _post(client, tenant, url, body, "claim")
    assert third.json()["id"] == second.json()["id"]
    assert session.scalar(select(func.count()).select_from(DomainClaim)) == 2
    # An expired key with another body is not a mismatch: it is a new key.
    _age(session, tenant, "claim", TTL + 1)
    other = _post(client, tenant, url, {"domain": f"e{uuid.uuid4().hex[:8]}.example"}, "claim")
    assert other.status_code == 201


def test_the_purge_deletes_keys_older_than_the_ttl(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    for name in ("old", "fresh"):
        assert _post(client, tenant, "/api/v1/workspaces", {"name": name}, name).status_code == 201
    _age(session, tenant, "old", 3600)
    now = utcnow()
    # Nothing is older than the TTL yet.
    assert idempotency.purge_expired(session, ttl_seconds=TTL, now=now) == 0
    later = now + timedelta(seconds=TTL - 1800)
    assert idempotency.purge_expired(session, ttl_seconds=TTL, now=later) == 1
    assert idempotency.purge_expired(session, ttl_seconds=TTL, now=later) == 0  # idempotent
    keys = session.scalars(
        select(IdempotencyKey.key).where(IdempotencyKey.tenant_id == tenant.tenant.id)
    ).all()
    assert keys == ["fresh"]
    # The purged key's create runs again: this workspace exists, so that is the name conflict,
    # not the replayed 201.
    again = _post(client, tenant, "/api/v1/workspaces", {"name": "old"}, "old")
    assert again.status_code == 409 and again.json()["error"]["field"] == "name"


def test_the_purge_job_deletes_in_batches(committed: Engine) -> None:
    with session_scope() as session:
        tenant = create_tenant(session)
        for i in range(5):
            session.add(
                IdempotencyKey(
                    tenant_id=tenant.tenant.id, key=f"k{i}", fingerprint="f", status_code=201,
                    response_encrypted="{}",
                )
            )  # fmt: skip
    now = utcnow() + timedelta(seconds=TTL + 1)
    assert idempotency_purge.run(get_settings(), now=now, batch=2) == 5
    assert idempotency_purge.run(get_settings(), now=now, batch=2) == 0
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
