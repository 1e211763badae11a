"""Reputation connectors over the API: off by default, PUT/GET/DELETE per kind, credentials
write-only (never returned), a 422 naming the field, another tenant's workspace a 404."""

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.support.factories import create_tenant, create_workspace
from tests.support.reputation_fakes import make_service_account

TOKEN = "ya29.secret-access-token"
KEY = "snds-secret-key-123"


def url(ws: uuid.UUID, kind: str) -> str:
    return f"/api/v1/workspaces/{ws}/reputation-connectors/{kind}"


def test_put_get_delete_never_return_credentials(session: Session, client: TestClient) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    off = client.get(url(ws, "google_postmaster"), headers=tenant.headers)
    assert off.status_code == 404 and off.json()["error"]["field"] == "kind"
    made = client.put(
        url(ws, "google_postmaster"), json={"access_token": TOKEN}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["credentials"] == ["access_token"] and made.json()["figures"] == []
    again = client.put(
        url(ws, "google_postmaster"), json={"access_token": TOKEN + "2"}, headers=tenant.headers
    )
    assert again.status_code == 200
    snds = client.put(url(ws, "microsoft_snds"), json={"key": KEY}, headers=tenant.headers)
    assert snds.status_code == 201 and snds.json()["credentials"] == ["key"]
    read = client.get(url(ws, "google_postmaster"), headers=tenant.headers)
    assert read.status_code == 200 and read.json()["kind"] == "google_postmaster"
    for response in (made, again, snds, read):
        assert TOKEN not in response.text and KEY not in response.text
    stored = session.execute(
        text("SELECT credentials_encrypted FROM reputation_connectors WHERE workspace_id = :w"),
        {"w": ws},
    ).scalars()
    assert all(TOKEN not in s and KEY not in s for s in stored)  # encrypted at rest
    gone = client.delete(url(ws, "google_postmaster"), headers=tenant.headers)
    assert gone.status_code == 204
    assert client.get(url(ws, "google_postmaster"), headers=tenant.headers).status_code == 404


def test_a_service_account_key_is_accepted_and_never_shown(
    session: Session, client: TestClient
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    info, _ = make_service_account()
    secret_line = info["private_key"].splitlines()[1]
    made = client.put(
        url(ws, "google_postmaster"), json={"service_account": info}, headers=tenant.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["credentials"] == ["service_account"]
    read = client.get(url(ws, "google_postmaster"), headers=tenant.headers)
    for response in (made, read):
        assert secret_line not in response.text and "PRIVATE KEY" not in response.text
    stored = session.execute(
        text("SELECT credentials_encrypted FROM reputation_connectors WHERE workspace_id = :w"),
        {"w": ws},
    ).scalar_one()
    assert secret_line not in stored and info["client_email"] not in stored  # encrypted
    unreadable = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
    bad_key = {**info, "private_key": unreadable}
    cases = [
        ({"service_account": bad_key}, "service_account.private_key"),
        ({"service_account": {**info, "type": "user"}}, "service_account.type"),
        # Line breaks are the only control characters a PEM key may hold.
        (
            {"service_account": {**info, "private_key": info["private_key"] + "\x00"}},
            "service_account.private_key",
        ),
        ({"service_account": {**info, "client_email": "a@b\n"}}, "service_account.client_email"),
        ({"service_account": "not an object"}, "service_account"),
        ({"service_account": info, "access_token": TOKEN}, "access_token"),
    ]
    for body, field in cases:
        response = client.put(url(ws, "google_postmaster"), json=body, headers=tenant.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in (response.json()["error"]["field"] or ""), (field, response.text)
        assert secret_line not in response.text


def test_an_undecryptable_secret_does_not_fail_the_read(
    session: Session, client: TestClient
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    put = client.put(
        url(ws, "google_postmaster"), json={"access_token": TOKEN}, headers=tenant.headers
    )
    assert put.status_code == 201
    session.execute(
        text("UPDATE reputation_connectors SET credentials_encrypted = 'gAAAA-not-fernet'"
             " WHERE workspace_id = :w"),
        {"w": ws},
    )  # fmt: skip
    read = client.get(url(ws, "google_postmaster"), headers=tenant.headers)
    assert read.status_code == 200, read.text
    assert read.json()["credentials"] == ["access_token", "service_account"]  # the kind's names


def test_put_is_idempotent_with_a_key(session: Session, client: TestClient) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    headers = {**tenant.headers, "Idempotency-Key": "connector-1"}
    first = client.put(url(ws, "microsoft_snds"), json={"key": KEY}, headers=headers)
    second = client.put(url(ws, "microsoft_snds"), json={"key": KEY}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_422_names_the_field(session: Session, client: TestClient) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant).id
    cases = [
        ("google_postmaster", {}, "access_token"),
        ("google_postmaster", {"access_token": TOKEN, "key": KEY}, "key"),
        ("microsoft_snds", {"access_token": TOKEN}, "access_token"),
        ("microsoft_snds", {"key": ""}, "key"),
        ("microsoft_snds", {"key": 5}, "key"),
        ("microsoft_snds", {"key": KEY, "extra": 1}, "extra"),
        ("yahoo", {"key": KEY}, "kind"),
    ]
    for kind, body, field in cases:
        response = client.put(url(ws, kind), json=body, headers=tenant.headers)
        assert response.status_code == 422, (kind, body, response.text)
        assert field in (response.json()["error"]["field"] or ""), (kind, body, response.text)
        assert TOKEN not in response.text and KEY not in response.text


def test_another_tenants_workspace_is_404(session: Session, client: TestClient) -> None:
    owner = create_tenant(session)
    ws = create_workspace(session, owner).id
    assert (
        client.put(url(ws, "microsoft_snds"), json={"key": KEY}, headers=owner.headers).status_code
        == 201
    )
    other = create_tenant(session)
    for method in ("get", "delete"):
        response = getattr(client, method)(url(ws, "microsoft_snds"), headers=other.headers)
        assert response.status_code == 404, response.text
    put = client.put(url(ws, "microsoft_snds"), json={"key": "x" * 8}, headers=other.headers)
    assert put.status_code == 404
    assert client.get(url(ws, "microsoft_snds"), headers=owner.headers).status_code == 200
