from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from domain.tenants import service
from tests.support.factories import create_tenant


def test_keys_are_stored_only_as_hashes(session: Session) -> None:
    tenant = create_tenant(session)
    rows = session.execute(
        text("SELECT prefix, key_hash FROM api_keys WHERE tenant_id = :t"), {"t": tenant.id}
    ).all()
    assert len(rows) == 1
    prefix, key_hash = rows[0]
    # The secret part may itself contain "_" (URL-safe base64): split the key at most twice.
    _, key_prefix, secret = tenant.api_key.split("_", 2)
    assert key_prefix == prefix and len(secret) >= 40
    assert tenant.api_key not in key_hash and secret not in key_hash
    dump = session.execute(text("SELECT row_to_json(api_keys)::text FROM api_keys")).scalars()
    assert all(secret not in row for row in dump)


def test_authenticate_and_revoke(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    key = service.authenticate(session, tenant.api_key)
    assert key.tenant_id == tenant.id
    assert client.get("/api/v1/workspaces", headers=tenant.headers).status_code == 200

    service.revoke_key(session, tenant.api_key.split("_")[1])
    session.flush()
    r = client.get("/api/v1/workspaces", headers=tenant.headers)
    assert r.status_code == 401


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    _, prefix, _ = tenant.api_key.split("_", 2)
    forged = f"pm_{prefix}_{'A' * 43}"
    assert (
        client.get("/api/v1/workspaces", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    assert client.get("/api/v1/workspaces", headers=tenant.headers).status_code == 200
