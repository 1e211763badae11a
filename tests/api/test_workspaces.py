import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from tests.support.factories import create_tenant, create_workspace


def _count_workspaces(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Workspace)) or 0


def _assert_error_shape(body: dict[str, object], code: str) -> dict[str, object]:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "message", "field", "details"}
    assert error["code"] == code
    return error


def test_create_get_and_list(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/workspaces", json={"name": "Outbound EU", "sandbox": True}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Outbound EU" and body["sandbox"] is True and body["engine"] == "sandbox"
    assert uuid.UUID(body["id"]) and body["created_at"]
    assert "ssh_private_key_encrypted" not in body

    got = client.get(f"/api/v1/workspaces/{body['id']}", headers=tenant.headers)
    assert got.status_code == 200 and got.json()["id"] == body["id"]

    for i in range(3):
        create_workspace(session, tenant, name=f"extra-{i}")
    page = client.get("/api/v1/workspaces?limit=2&offset=1", headers=tenant.headers).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert len(page["items"]) == 2


def test_secrets_are_encrypted_at_rest(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    workspace = create_workspace(session, tenant)
    raw = session.execute(
        select(Workspace.__table__.c.ssh_private_key_encrypted).where(Workspace.id == workspace.id)
    ).scalar_one()
    assert workspace.ssh_private_key_encrypted is not None
    assert "PRIVATE KEY" in workspace.ssh_private_key_encrypted
    from sqlalchemy import text

    stored = session.execute(
        text("SELECT ssh_private_key_encrypted FROM workspaces WHERE id = :i"), {"i": workspace.id}
    ).scalar_one()
    assert "PRIVATE KEY" not in stored and raw == workspace.ssh_private_key_encrypted


def test_missing_or_bad_key_is_401(client: TestClient, session: Session) -> None:
    for headers in ({}, {"Authorization": "Bearer pm_nope_nope"}, {"Authorization": "Basic x"}):
        r = client.post("/api/v1/workspaces", json={"name": "x"}, headers=headers)
        assert r.status_code == 401
        _assert_error_shape(r.json(), "unauthorized")
    assert _count_workspaces(session) == 0


def test_another_tenants_workspace_is_404(client: TestClient, session: Session) -> None:
    owner, stranger = create_tenant(session), create_tenant(session)
    workspace = create_workspace(session, owner)
    for method in ("GET", "DELETE"):
        r = client.request(method, f"/api/v1/workspaces/{workspace.id}", headers=stranger.headers)
        assert r.status_code == 404, method
        _assert_error_shape(r.json(), "not_found")
    listed = client.get("/api/v1/workspaces", headers=stranger.headers).json()
    assert listed["total"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"name": "ok", "sandbox": "yes"}, "sandbox"),
        ({"name": "ok", "sandbox": 1}, "sandbox"),
        ({"name": "ok", "sandbox": "true"}, "sandbox"),
        ({"name": "ok", "sandbox": None}, "sandbox"),
        ({"name": 123}, "name"),
        ({"name": True}, "name"),
        ({"name": ["ws"]}, "name"),
        ({"name": "ok", "colour": "blue"}, "colour"),
        ({}, "name"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, session: Session, payload: dict[str, object], field: str
) -> None:
    tenant = create_tenant(session)
    r = client.post("/api/v1/workspaces", json=payload, headers=tenant.headers)
    assert r.status_code == 422
    error = _assert_error_shape(r.json(), "validation_error")
    assert error["field"] == field
    assert field in str(error["message"])
    assert _count_workspaces(session) == 0


def test_malformed_json_is_422(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/workspaces",
        content=b'{"name": "x",',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert _assert_error_shape(r.json(), "validation_error")["field"] == "body"
    assert _count_workspaces(session) == 0


def test_duplicate_name_is_409(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    create_workspace(session, tenant, name="dup")
    r = client.post("/api/v1/workspaces", json={"name": "dup"}, headers=tenant.headers)
    assert r.status_code == 409
    assert _assert_error_shape(r.json(), "conflict")["field"] == "name"


def test_delete_refused_while_it_has_servers(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    workspace = create_workspace(session, tenant)
    session.add(
        VpsServer(
            tenant_id=tenant.id,
            workspace_id=workspace.id,
            provider="hetzner",
            hostname="mail.example.com",
            name="s1",
            size="starter",
            region="eu-central",
        )
    )
    session.flush()
    r = client.delete(f"/api/v1/workspaces/{workspace.id}", headers=tenant.headers)
    assert r.status_code == 409
    _assert_error_shape(r.json(), "conflict")

    empty = create_workspace(session, tenant)
    assert (
        client.delete(f"/api/v1/workspaces/{empty.id}", headers=tenant.headers).status_code == 204
    )
    assert client.get(f"/api/v1/workspaces/{empty.id}", headers=tenant.headers).status_code == 404


def test_health_endpoints_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "/api/v1/workspaces" in client.get("/openapi.json").json()["paths"]


def test_paging_parameters_are_bounded(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    for query, field in [
        ("offset=10602533764480122880", "offset"),  # past bigint: once a 500 (fuzzing found it)
        ("offset=-1", "offset"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ]:
        r = client.get(f"/api/v1/workspaces?{query}", headers=tenant.headers)
        assert r.status_code == 422, query
        assert r.json()["error"]["field"] == field
