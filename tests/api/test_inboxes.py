"""The seed's inbox endpoints: 202 with the inbox, its operation and credentials shown once;
placement on servers; validation that writes and enqueues nothing; tenant scoping."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from tests.support.factories import TenantWithKey, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _body(address: str = "sales@acme.example", **overrides: Any) -> dict[str, Any]:
    return {
        "email_address": address,
        "display_name": "Sales Team",
        "vps_provider": "hetzner",
        "vps_size": "professional",
        **overrides,
    }


def _setup(session: Session) -> tuple[TenantWithKey, str]:
    tenant = create_tenant(session)
    return tenant, str(create_workspace(session, tenant).id)


def test_create_inbox_accepts_and_enqueues(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    r = client.post(f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=tenant.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending_setup" and body["email_address"] == "sales@acme.example"
    assert body["vps_id"] and body["operation_id"]
    creds = body["credentials"]
    assert creds["username"] == "sales@acme.example" and len(creds["password"]) >= 16
    assert creds["smtp"]["port"] == 465 and creds["imap"]["port"] == 993

    server = session.get_one(VpsServer, uuid.UUID(body["vps_id"]))
    assert (server.provider, server.size, server.status) == (
        "hetzner",
        "professional",
        "provisioning",
    )
    assert server.hostname.endswith(".acme.example") and server.monthly_cost is not None
    op = session.get_one(Operation, uuid.UUID(body["operation_id"]))
    assert (op.kind, op.status) == ("up", "queued")

    stored = session.execute(text("SELECT password_encrypted FROM inboxes")).scalar_one()
    assert creds["password"] not in stored

    got = client.get(f"/api/v1/inboxes/{body['id']}", headers=tenant.headers).json()
    assert "credentials" not in got and got["status"] == "pending_setup"


def test_inboxes_share_a_server_with_room_then_a_new_one_joins(
    client: TestClient, session: Session, override_settings: OverrideSettings
) -> None:
    override_settings(inboxes_per_server=2)
    tenant, ws = _setup(session)
    ids = []
    for i in range(3):
        r = client.post(
            f"/api/v1/workspaces/{ws}/inboxes",
            json=_body(f"u{i}@acme.example"),
            headers=tenant.headers,
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["vps_id"])
    assert ids[0] == ids[1] != ids[2]
    other = client.post(
        f"/api/v1/workspaces/{ws}/inboxes",
        json=_body("x@acme.example", vps_size="starter"),
        headers=tenant.headers,
    ).json()
    assert other["vps_id"] not in ids
    queued = session.scalars(select(Operation).where(Operation.status == "queued")).all()
    assert len(queued) == 1  # four changes, one coalesced up


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_body("not-an-address"), "email_address"),
        (_body("a@b@c.example"), "email_address"),
        (_body(vps_provider="digitalocean"), "vps_provider"),
        (_body(vps_size="huge"), "vps_size"),
        (_body(vps_region="mars-1"), "vps_region"),
        (_body(display_name="x" * 300), "display_name"),
        (_body(display_name=123), "display_name"),
        (_body(display_name=False), "display_name"),
        (_body(email_address=42), "email_address"),
        (_body(vps_provider=1), "vps_provider"),
        (_body(vps_size=True), "vps_size"),
        (_body(vps_region=2), "vps_region"),
        (_body(colour="blue"), "colour"),
        ({"email_address": "a@acme.example"}, "vps_provider"),
    ],
)
def test_bad_input_writes_and_enqueues_nothing(
    client: TestClient, session: Session, payload: dict[str, Any], field: str
) -> None:
    tenant, ws = _setup(session)
    r = client.post(f"/api/v1/workspaces/{ws}/inboxes", json=payload, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert (_count(session, Inbox), _count(session, VpsServer), _count(session, Operation)) == (
        0,
        0,
        0,
    )


def test_duplicate_address_is_409(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    assert (
        client.post(
            f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=tenant.headers
        ).status_code
        == 202
    )
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_body("Sales@ACME.example"), headers=tenant.headers
    )
    assert r.status_code == 409 and r.json()["error"]["field"] == "email_address"
    assert _count(session, Inbox) == 1


def test_patch_validates_and_keeps_the_address(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    inbox = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=tenant.headers
    ).json()
    url = f"/api/v1/inboxes/{inbox['id']}"
    ok = client.patch(
        url, json={"daily_send_limit": 100, "warmup_enabled": True}, headers=tenant.headers
    )
    assert ok.status_code == 200
    assert ok.json()["daily_send_limit"] == 100 and ok.json()["warmup_enabled"] is True
    for payload, field in [
        ({"daily_send_limit": 0}, "daily_send_limit"),
        ({"daily_send_limit": 10001}, "daily_send_limit"),
        ({"daily_send_limit": True}, "daily_send_limit"),
        ({"daily_send_limit": "100"}, "daily_send_limit"),
        ({"daily_send_limit": 100.0}, "daily_send_limit"),
        ({"warmup_enabled": "yes"}, "warmup_enabled"),
        ({"warmup_enabled": 1}, "warmup_enabled"),
        ({"display_name": 7}, "display_name"),
        ({"email_address": "new@acme.example"}, "email_address"),
    ]:
        r = client.patch(url, json=payload, headers=tenant.headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, payload
    after = client.get(url, headers=tenant.headers).json()
    assert after["daily_send_limit"] == 100 and after["email_address"] == "sales@acme.example"


def test_list_filters_and_paginates(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    for i in range(3):
        client.post(
            f"/api/v1/workspaces/{ws}/inboxes",
            json=_body(f"u{i}@acme.example"),
            headers=tenant.headers,
        )
    page = client.get(f"/api/v1/workspaces/{ws}/inboxes?limit=2", headers=tenant.headers).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    none = client.get(
        f"/api/v1/workspaces/{ws}/inboxes?status=ready", headers=tenant.headers
    ).json()
    assert none["total"] == 0


def test_rotate_and_delete(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    inbox = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=tenant.headers
    ).json()
    rotated = client.post(
        f"/api/v1/inboxes/{inbox['id']}/credentials/rotate", headers=tenant.headers
    )
    assert rotated.status_code == 202
    assert rotated.json()["credentials"]["password"] != inbox["credentials"]["password"]
    deleted = client.delete(f"/api/v1/inboxes/{inbox['id']}", headers=tenant.headers)
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    assert deleted.json()["operation_id"]


def test_other_tenants_inboxes_are_404(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    stranger = create_tenant(session)
    inbox = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=tenant.headers
    ).json()
    for method, url in [
        ("GET", f"/api/v1/inboxes/{inbox['id']}"),
        ("PATCH", f"/api/v1/inboxes/{inbox['id']}"),
        ("DELETE", f"/api/v1/inboxes/{inbox['id']}"),
        ("POST", f"/api/v1/inboxes/{inbox['id']}/credentials/rotate"),
        ("GET", f"/api/v1/workspaces/{ws}/inboxes"),
        ("POST", f"/api/v1/workspaces/{ws}/inboxes"),
    ]:
        kwargs: dict[str, Any] = {"json": _body("b@acme.example") if method == "POST" else {}}
        if method in ("GET", "DELETE"):
            kwargs = {}
        r = client.request(method, url, headers=stranger.headers, **kwargs)
        assert r.status_code == 404, (method, url, r.text)


def test_idempotency_key_replays_or_refuses(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    headers = {**tenant.headers, "Idempotency-Key": "create-sales-1"}
    first = client.post(f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=headers)
    again = client.post(f"/api/v1/workspaces/{ws}/inboxes", json=_body(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert _count(session, Inbox) == 1
    other = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_body("other@acme.example"), headers=headers
    )
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    stored = session.execute(text("SELECT response_encrypted FROM idempotency_keys")).scalar_one()
    assert first.json()["credentials"]["password"] not in stored


def test_idempotency_key_length_is_checked(client: TestClient, session: Session) -> None:
    tenant, ws = _setup(session)
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes",
        json=_body(),
        headers={**tenant.headers, "Idempotency-Key": "k" * 256},
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"
    assert _count(session, Inbox) == 0
