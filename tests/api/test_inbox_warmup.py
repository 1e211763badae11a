"""PATCH warmup_enabled starts the ramp; GET /inboxes/{id} shows what the mail server enforces
(`sending`); the change is queued as a stack run like any other; the events are recorded."""

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.operations import Operation
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace


def test_enabling_warmup_starts_the_ramp_and_caps_the_inbox(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    inbox = create_inbox(session, ws, server=server, status="ready")
    url = f"/api/v1/inboxes/{inbox.id}"

    before = client.get(url, headers=tenant.headers).json()["sending"]
    assert before["warmup"] == {
        "status": "not_started",
        "day": None,
        "started_at": None,
        "next_step_at": None,
        "paused_reason": None,
    }

    r = client.patch(url, json={"warmup_enabled": True}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    sending = client.get(url, headers=tenant.headers).json()["sending"]
    assert sending["effective_daily_limit"] == 5 and sending["hold_reason"] is None
    w = sending["warmup"]
    assert w["status"] == "in_progress" and w["day"] == 1 and w["paused_reason"] is None
    assert w["started_at"] is not None and w["next_step_at"] > w["started_at"]

    types = set(session.scalars(select(Event.type).where(Event.subject_id == inbox.id)).all())
    assert "inbox.warmup_started" in types
    ups = session.scalars(
        select(Operation).where(Operation.workspace_id == ws.id, Operation.kind == "up")
    ).all()
    assert len(ups) == 1  # the new cap reaches Stalwart through a stack run

    r = client.patch(url, json={"warmup_start_daily": 12}, headers=tenant.headers)
    assert r.json()["sending"]["effective_daily_limit"] == 12

    r = client.patch(url, json={"warmup_enabled": False}, headers=tenant.headers)
    sending = r.json()["sending"]
    assert sending["warmup"]["status"] == "not_started"
    assert sending["effective_daily_limit"] == 50


def test_overrides_are_validated(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    inbox = create_inbox(session, ws, server=create_server(session, ws), status="ready")
    for body, field in (
        ({"warmup_start_daily": 0}, "warmup_start_daily"),
        ({"warmup_daily_increase": -1}, "warmup_daily_increase"),
        ({"warmup_start_daily": "5"}, "warmup_start_daily"),
    ):
        r = client.patch(f"/api/v1/inboxes/{inbox.id}", json=body, headers=tenant.headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text


def test_the_workspace_policy_has_documented_defaults_and_can_be_replaced(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    inbox = create_inbox(session, ws, server=server, status="ready")
    url = f"/api/v1/workspaces/{ws.id}/warmup-policy"
    assert client.get(url, headers=tenant.headers).json() == {
        "start_daily": 5,
        "daily_increase": 2,
        "domain_daily_cap": 150,
        "server_daily_cap": None,
        "floor_daily": 5,
        "clear_seconds": 86400,
    }
    r = client.put(url, json={"server_daily_cap": 20}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["server_daily_cap"] == 20
    got = client.get(f"/api/v1/inboxes/{inbox.id}", headers=tenant.headers).json()
    assert got["sending"]["effective_daily_limit"] == 20
    bad = client.put(url, json={"floor_daily": 0}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "floor_daily"
    other = create_tenant(session)
    assert client.get(url, headers=other.headers).status_code == 404


def test_a_new_inbox_gets_its_cap_with_the_run_that_creates_it(
    client: TestClient, session: Session
) -> None:
    from datetime import UTC, datetime

    from domain.warmup import service as warmup
    from settings import get_settings

    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    r = client.post(
        f"/api/v1/workspaces/{ws.id}/inboxes",
        json={
            "email_address": "new@acme.example",
            "vps_provider": "hetzner",
            "vps_size": "starter",
        },
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["sending"]["effective_daily_limit"] == 50
    ups = session.scalars(select(Operation.id).where(Operation.workspace_id == ws.id)).all()
    assert ups == [uuid.UUID(r.json()["operation_id"])]  # the cap joined the create's up
    # the sweep finds nothing to change, so it queues no second run behind the create
    applied = warmup.apply_workspace(session, ws.id, datetime.now(UTC), settings=get_settings())
    assert applied.changed_limits == 0 and applied.operation_id is None
