"""GET /api/v1/events: the tenant's events, filtered by type, workspace and time, paginated."""

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from database.models.events import Event
from domain.events import catalogue
from domain.events import service as events
from kit.time import utcnow
from tests.support.factories import create_tenant, create_workspace


def test_events_filter_and_paginate_within_the_tenant(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    other = create_tenant(session)
    ws1 = create_workspace(session, tenant)
    ws2 = create_workspace(session, tenant)
    foreign = create_workspace(session, other)
    old = events.record(
        session,
        tenant_id=tenant.id,
        workspace_id=ws1.id,
        type=catalogue.HEALTH_ALERT,
        message="old",
    )
    events.record(
        session,
        tenant_id=tenant.id,
        workspace_id=ws1.id,
        type=catalogue.HEALTH_RECOVERED,
        message="r",
    )
    events.record(
        session, tenant_id=tenant.id, workspace_id=ws2.id, type=catalogue.DNS_VERIFIED, message="d"
    )
    events.record(
        session,
        tenant_id=other.id,
        workspace_id=foreign.id,
        type=catalogue.HEALTH_ALERT,
        message="x",
    )
    session.flush()
    session.execute(
        update(Event).where(Event.id == old.id).values(created_at=utcnow() - timedelta(days=2))
    )

    def get(**params: object) -> dict[str, object]:
        r = client.get("/api/v1/events", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert isinstance(body, dict)
        return body

    everything = get()
    assert everything["total"] == 3
    messages = [e["message"] for e in everything["items"]]  # type: ignore[union-attr]
    assert "x" not in messages and messages[-1] == "old"  # newest first

    assert [e["message"] for e in get(type=catalogue.HEALTH_ALERT)["items"]] == ["old"]  # type: ignore[union-attr]
    assert {e["message"] for e in get(type="health.*")["items"]} == {"old", "r"}  # type: ignore[union-attr]
    assert [e["message"] for e in get(workspace_id=str(ws2.id))["items"]] == ["d"]  # type: ignore[union-attr]
    since = (utcnow() - timedelta(days=1)).isoformat()
    assert get(since=since)["total"] == 2
    page = get(limit=1, offset=1)
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (3, 1, 1, 1)  # type: ignore[arg-type]
    assert get(workspace_id=str(foreign.id))["total"] == 0


def test_events_bad_filters_and_auth(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    r = client.get("/api/v1/events", params={"type": "x; drop"}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "type"
    r = client.get("/api/v1/events", params={"type": "dns_verified"}, headers=tenant.headers)
    error = r.json()["error"]
    assert r.status_code == 422 and error["field"] == "type"
    assert "unknown event type 'dns_verified' (now 'dns.verified')" in error["message"]
    r = client.get("/api/v1/events", params={"type": "dnss.*"}, headers=tenant.headers)
    assert r.status_code == 422 and "unknown event family 'dnss'" in r.json()["error"]["message"]
    r = client.get("/api/v1/events", params={"since": "yesterday"}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "since"
    r = client.get("/api/v1/events", params={"workspace_id": "nope"}, headers=tenant.headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "workspace_id"
    assert client.get("/api/v1/events").status_code == 401


def test_the_event_type_catalogue_lists_every_type_with_an_example(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.get("/api/v1/event-types", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [t["name"] for t in body["items"]] == [t.name for t in catalogue.ALL]
    assert body["families"] == list(catalogue.FAMILIES)
    for item in body["items"]:
        t = catalogue.BY_NAME[item["name"]]
        assert item["family"] == item["name"].split(".")[0] and item["description"]
        example = item["example"]
        # the shape a receiver gets (domain.webhooks.schemas.event_body)
        assert set(example) == {
            "id", "type", "created_at", "workspace_id", "workspace_name", "subject", "message",
            "data",
        }  # fmt: skip
        assert example["type"] == t.name and example["subject"]["type"] == t.subject
        assert example["data"] == t.data and example["message"] == t.message
    assert "dns.*" not in [t["name"] for t in body["items"]]
    assert client.get("/api/v1/event-types").status_code == 401


def test_events_keep_their_workspace_id_and_name_after_the_workspace_is_deleted(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    other = create_tenant(session)
    r = client.post(
        "/api/v1/workspaces", json={"name": "outbound-eu", "sandbox": True}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    ws_id = r.json()["id"]
    events.record(
        session,
        tenant_id=tenant.id,
        workspace_id=uuid.UUID(ws_id),
        type=catalogue.SERVER_DELETED,
        message="server gone",
    )
    session.flush()
    assert client.delete(f"/api/v1/workspaces/{ws_id}", headers=tenant.headers).status_code == 204
    assert client.get(f"/api/v1/workspaces/{ws_id}", headers=tenant.headers).status_code == 404

    body = client.get(
        "/api/v1/events", params={"workspace_id": ws_id}, headers=tenant.headers
    ).json()
    [event] = body["items"]
    assert (event["workspace_id"], event["workspace_name"]) == (ws_id, "outbound-eu")
    assert event["type"] == "server.deleted"
    # still the tenant's alone
    r = client.get("/api/v1/events", params={"workspace_id": ws_id}, headers=other.headers)
    assert r.json()["total"] == 0
    # a workspace of the same name made afterwards is another workspace
    again = client.post(
        "/api/v1/workspaces", json={"name": "outbound-eu", "sandbox": True}, headers=tenant.headers
    ).json()["id"]
    r = client.get("/api/v1/events", params={"workspace_id": again}, headers=tenant.headers)
    assert r.json()["total"] == 0


def test_an_event_without_a_workspace_has_no_name(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    events.record(session, tenant_id=tenant.id, type=catalogue.WEBHOOK_DISABLED, message="off")
    session.flush()
    [event] = client.get("/api/v1/events", headers=tenant.headers).json()["items"]
    assert (event["workspace_id"], event["workspace_name"]) == (None, None)
