"""Webhook endpoints over the API, and delivery: signed POSTs, retries with backoff on failure,
the delivery log, and a dead endpoint that never holds up another tenant's deliveries."""

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from database.models.webhooks import WebhookDelivery
from database.session import session_scope
from database.transactions import run_in_transaction
from domain.events import catalogue
from domain.events import service as events
from domain.events.catalogue import EventType
from domain.webhooks import delivery, guard, manual, signing
from domain.webhooks import service as webhooks
from domain.webhooks.schemas import WebhookCreate, WebhookUpdate
from domain.webhooks.states import DeliveryStatus
from kit import crypto
from kit.time import utcnow
from scheduler.jobs import webhooks_deliver
from settings import get_settings
from tests.support.factories import TenantWithKey, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings
from tests.support.loopback import Lab
from tests.support.receiver import Receiver

FAST = delivery.DeliveryOptions(timeout=2, max_attempts=3, backoff=0, allow_private=True)


@pytest.fixture
def allow_loopback(override_settings: OverrideSettings) -> None:
    override_settings(webhook_allow_private_urls=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    yield lab
    lab.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _tenant() -> tuple[TenantWithKey, uuid.UUID]:
    with session_scope() as s:
        tenant = create_tenant(s)
        workspace = create_workspace(s, tenant)
        return tenant, workspace.id


def _event(
    tenant: TenantWithKey, workspace_id: uuid.UUID, type: EventType = catalogue.HEALTH_ALERT
) -> None:
    with session_scope() as s:
        events.record(
            s,
            tenant_id=tenant.id,
            workspace_id=workspace_id,
            type=type,
            message=f"{type.name} test",
        )


# --- endpoints ----------------------------------------------------------------------------


def test_create_shows_the_secret_once_and_stores_it_encrypted(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/pm", "event_types": ["health.*", "dns.verified"]},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert body["event_types"] == ["dns.verified", "health.*"]

    got = client.get(f"/api/v1/webhooks/{body['id']}", headers=tenant.headers).json()
    assert "secret" not in got and got["url"] == "https://hooks.example.com/pm"
    listed = client.get("/api/v1/webhooks", headers=tenant.headers).json()
    assert [w["id"] for w in listed["items"]] == [body["id"]]
    assert all("secret" not in w for w in listed["items"])
    stored = session.scalar(
        text("SELECT secret_encrypted FROM webhook_endpoints WHERE id = :id"), {"id": body["id"]}
    )
    assert secret not in stored

    other = create_tenant(session)
    assert client.get(f"/api/v1/webhooks/{body['id']}", headers=other.headers).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{body['id']}", headers=other.headers).status_code == 404
    assert (
        client.delete(f"/api/v1/webhooks/{body['id']}", headers=tenant.headers).status_code == 204
    )
    assert client.get(f"/api/v1/webhooks/{body['id']}", headers=tenant.headers).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "http://127.0.0.1:9/hook"}, "url"),
        ({"url": "http://localhost/hook"}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/x", "event_types": ["Health Alert"]}, "event_types.0"),
        ({"url": "https://example.com/x", "event_types": []}, "event_types"),
        ({"url": "https://example.com/x", "event_types": "health.*"}, "event_types"),
        ({"url": "https://example.com/x", "secret": "mine"}, "secret"),
    ],
)
def test_bad_endpoints_are_422_naming_the_field(
    client: TestClient, session: Session, payload: dict[str, object], field: str
) -> None:
    tenant = create_tenant(session)
    r = client.post("/api/v1/webhooks", json=payload, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json()["total"] == 0


@pytest.mark.parametrize(
    ("event_types", "index", "said"),
    [
        (["health.alert", "dns.verifed"], 1, "unknown event type 'dns.verifed'"),
        (["dns_verified"], 0, "unknown event type 'dns_verified' (now 'dns.verified')"),
        (["*", "nope.*"], 1, "unknown event family 'nope'"),
        (["*.alert"], 0, "unknown event type '*.alert'"),
    ],
)
def test_a_mistyped_subscription_is_422_naming_the_item_and_the_type(
    client: TestClient, session: Session, event_types: list[str], index: int, said: str
) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/x", "event_types": event_types},
        headers=tenant.headers,
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == f"event_types.{index}"
    assert said in error["message"], error
    assert error["details"][0]["type"] == "unknown_event_type"
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json()["total"] == 0


def test_families_and_star_are_accepted_and_the_default_is_every_type(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://example.com/x", "event_types": ["dns.*", "*", "dns.*"]},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["event_types"] == ["*", "dns.*"]
    r = client.post(
        "/api/v1/webhooks", json={"url": "https://example.com/y"}, headers=tenant.headers
    )
    assert r.status_code == 201 and r.json()["event_types"] == ["*"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://📬.example.com/x", "not allowed"),  # IDNA 2008 refuses emoji
        ("https://xn--iu8h.example.com/x", "not allowed"),  # the same, already in punycode
        (f"https://{'a' * 64}.example.com/x", "label of 64 characters"),
        ("https://a..example.com/x", "empty label"),
        ("https://" + "a" * 60 + ".a" * 97 + ".example/x", "at most 253"),
    ],
)
def test_hosts_no_request_can_be_built_for_are_422_naming_the_url(
    client: TestClient, session: Session, url: str, reason: str
) -> None:
    """These used to be accepted (201) and then abort the delivery job on every run."""
    tenant = create_tenant(session)
    r = client.post("/api/v1/webhooks", json={"url": url}, headers=tenant.headers)
    assert r.status_code == 422, (url, r.text)
    error = r.json()["error"]
    assert error["field"] == "url" and reason in error["message"], error
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json()["total"] == 0


def test_an_internationalised_host_is_stored_and_used_in_punycode(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/webhooks", json={"url": "https://Bücher.example/hook?q=ü"}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    stored = "https://xn--bcher-kva.example/hook?q=%C3%BC"
    assert r.json()["url"] == stored
    got = client.get(f"/api/v1/webhooks/{r.json()['id']}", headers=tenant.headers).json()
    assert got["url"] == stored and got["consecutive_failures"] == 0
    # What a delivery builds from the stored URL, and what the guard resolves: the ASCII host.
    assert guard.usable_url(stored).raw_host == b"xn--bcher-kva.example"
    assert str(guard.usable_url(stored)) == stored


def _create(client: TestClient, tenant: TenantWithKey, **body: object) -> dict[str, Any]:
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/pm", **body},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"url": "https://other.example.com/new"}, {"url": "https://other.example.com/new"}),
        ({"url": "https://Bücher.example/x"}, {"url": "https://xn--bcher-kva.example/x"}),
        ({"description": "billing"}, {"description": "billing"}),
        ({"event_types": ["dns.*", "inbox.ready"]}, {"event_types": ["dns.*", "inbox.ready"]}),
        ({"active": False}, {"active": False}),
        ({}, {}),
    ],
)
def test_patch_changes_only_the_fields_given(
    client: TestClient, session: Session, change: dict[str, object], expected: dict[str, object]
) -> None:
    tenant = create_tenant(session)
    before = _create(client, tenant, description="ops", event_types=["health.*"])
    r = client.patch(f"/api/v1/webhooks/{before['id']}", json=change, headers=tenant.headers)
    assert r.status_code == 200, r.text
    after = r.json()
    assert "secret" not in after
    unchanged = {k: v for k, v in before.items() if k not in ("secret", "events_since")}
    assert {k: after[k] for k in unchanged} == unchanged | expected
    got = client.get(f"/api/v1/webhooks/{before['id']}", headers=tenant.headers).json()
    assert got == after


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        ({"url": "http://127.0.0.1/hook"}, "url", "private or loopback"),
        ({"url": "ftp://example.com/x"}, "url", "URL scheme"),
        ({"url": "https://a..example.com/x"}, "url", "empty label"),
        ({"event_types": ["health.alert", "dns.verifed"]}, "event_types.1", "'dns.verifed'"),
        ({"event_types": ["nope.*"]}, "event_types.0", "unknown event family 'nope'"),
        ({"event_types": []}, "event_types", "at least one"),
        ({"active": "yes"}, "active", "boolean"),
        ({"active": 1}, "active", "boolean"),
        ({"active": None}, "active", "cannot be null"),
        ({"url": None}, "url", "cannot be null"),
        ({"description": 5}, "description", "string"),
        ({"description": "x" * 256}, "description", "255"),
        ({"secret": "mine"}, "secret", "unknown field"),
    ],
)
def test_patch_validation_errors_name_the_field_and_change_nothing(
    client: TestClient, session: Session, change: dict[str, object], field: str, said: str
) -> None:
    tenant = create_tenant(session)
    before = _create(client, tenant, event_types=["health.*"])
    r = client.patch(f"/api/v1/webhooks/{before['id']}", json=change, headers=tenant.headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field and said in error["message"], error
    got = client.get(f"/api/v1/webhooks/{before['id']}", headers=tenant.headers).json()
    assert got == {k: v for k, v in before.items() if k != "secret"}


def test_patch_is_404_for_another_tenant_and_an_unknown_id(
    client: TestClient, session: Session
) -> None:
    tenant, other = create_tenant(session), create_tenant(session)
    hook = _create(client, tenant)
    for who, webhook_id in ((other, hook["id"]), (tenant, str(uuid.uuid4()))):
        r = client.patch(
            f"/api/v1/webhooks/{webhook_id}", json={"active": False}, headers=who.headers
        )
        assert r.status_code == 404 and r.json()["error"]["field"] == "webhook_id"
    assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=tenant.headers).json()["active"]


def test_an_idempotent_create_replays_the_same_answer(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    headers = {**tenant.headers, "Idempotency-Key": "hook-1"}
    body = {"url": "https://hooks.example.com/pm", "event_types": ["health.*"]}
    first = client.post("/api/v1/webhooks", json=body, headers=headers)
    again = client.post("/api/v1/webhooks", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert client.get("/api/v1/webhooks", headers=tenant.headers).json()["total"] == 1
    other = client.post(
        "/api/v1/webhooks", json={**body, "event_types": ["dns.*"]}, headers=headers
    )
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    stored = session.execute(text("SELECT response_encrypted FROM idempotency_keys")).scalar_one()
    assert first.json()["secret"] not in stored


# --- delivery -----------------------------------------------------------------------------


def _endpoint(tenant: TenantWithKey, url: str, event_types: list[str] | None = None) -> str:
    """Committed (the delivery job reads it from its own connections)."""
    with session_scope() as s:
        endpoint, _ = webhooks.create(
            s,
            tenant.id,
            WebhookCreate(url=url, event_types=event_types or ["*"]),
            settings=get_settings(),
        )
        return str(endpoint.id)


def test_a_failing_receiver_gets_retries_and_the_log_shows_each(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    receiver.status = 500
    tenant, workspace_id = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url)
    _event(tenant, workspace_id)

    for expected in (1, 2, 3):
        report = webhooks_deliver.run(FAST)
        assert (report.attempted, report.failed) == (1, 1)
        assert len(receiver.requests) == expected
    assert webhooks_deliver.run(FAST).attempted == 0  # gave up after max_attempts

    assert [r.headers["PenguinMails-Delivery-Attempt"] for r in receiver.requests] == [
        "1",
        "2",
        "3",
    ]
    assert len({r.headers["PenguinMails-Event-Id"] for r in receiver.requests}) == 1
    log = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers).json()
    assert log["total"] == 1
    d = log["items"][0]
    assert (d["status"], d["attempts"], d["last_status_code"], d["event_type"]) == (
        "dead",
        3,
        500,
        "health.alert",
    )
    assert [(a["number"], a["status_code"], a["error"]) for a in d["log"]] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 500, "HTTP 500"),
    ]


def test_backoff_defers_the_retry_and_a_later_success_is_logged(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    receiver.status = 503
    tenant, workspace_id = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url)
    _event(tenant, workspace_id)
    slow = delivery.DeliveryOptions(timeout=2, max_attempts=3, backoff=3600, allow_private=True)
    assert webhooks_deliver.run(slow).attempted == 1
    assert webhooks_deliver.run(slow).attempted == 0  # not due for an hour
    with session_scope() as s:
        s.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
    receiver.status = 204
    assert webhooks_deliver.run(slow).delivered == 1
    d = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers).json()
    item = d["items"][0]
    assert item["status"] == "delivered" and item["delivered_at"]
    assert [a["status_code"] for a in item["log"]] == [503, 204]


def test_a_dead_endpoint_never_holds_up_another_tenant(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver, lab: Lab
) -> None:
    _, silent_port = lab.hang()
    stuck, stuck_ws = _tenant()
    fine, fine_ws = _tenant()
    stuck_endpoint = _endpoint(stuck, f"http://127.0.0.1:{silent_port}/hook")
    _endpoint(fine, receiver.url)
    _event(stuck, stuck_ws)
    _event(fine, fine_ws)

    report = webhooks_deliver.run(
        delivery.DeliveryOptions(timeout=0.5, max_attempts=5, backoff=60, allow_private=True)
    )
    assert (report.attempted, report.delivered) == (2, 1)
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["type"] == "health.alert"
    d = client.get(f"/api/v1/webhooks/{stuck_endpoint}/deliveries", headers=stuck.headers).json()
    assert d["items"][0]["status"] == "pending"
    assert "timed out" in d["items"][0]["log"][0]["error"]


def test_only_subscribed_types_are_sent_and_only_to_their_tenant(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    other, other_ws = _tenant()
    _endpoint(tenant, receiver.url, ["health.*"])
    _event(tenant, ws, catalogue.HEALTH_ALERT)
    _event(tenant, ws, catalogue.DNS_VERIFIED)
    _event(other, other_ws, catalogue.HEALTH_ALERT)
    assert webhooks_deliver.run(FAST).delivered == 1
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["health.alert"]
    body = json.loads(receiver.requests[0].body)
    assert body["workspace_id"] == str(ws) and body["workspace_name"].startswith("ws-")


def test_family_exact_and_star_subscriptions_fan_out_what_they_name(
    committed: Engine, client: TestClient, allow_loopback: None
) -> None:
    tenant, ws = _tenant()
    receivers = {name: Receiver() for name in ("dns", "exact", "star")}
    try:
        _endpoint(tenant, receivers["dns"].url, ["dns.*"])
        _endpoint(tenant, receivers["exact"].url, ["server.ready", "health.recovered"])
        _endpoint(tenant, receivers["star"].url, ["*"])
        sent = [
            catalogue.DNS_VERIFIED,
            catalogue.DNS_REGRESSED,
            catalogue.SERVER_READY,
            catalogue.HEALTH_ALERT,
            catalogue.MAIL_SERVER_RESTARTED,
        ]
        for t in sent:
            _event(tenant, ws, t)
        assert webhooks_deliver.run(FAST).delivered == 2 + 1 + len(sent)

        def got(name: str) -> set[str]:
            return {json.loads(r.body)["type"] for r in receivers[name].requests}

        assert got("dns") == {"dns.verified", "dns.regressed"}
        assert got("exact") == {"server.ready"}
        assert got("star") == {t.name for t in sent}
    finally:
        for r in receivers.values():
            r.close()


def _update(tenant: TenantWithKey, endpoint_id: str, **change: Any) -> None:
    """Committed, as PATCH writes it (the delivery job reads from its own connections)."""
    with session_scope() as s:
        webhooks.update(
            s, tenant.id, uuid.UUID(endpoint_id), WebhookUpdate(**change), settings=get_settings()
        )


def _types(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["type"] for r in receiver.requests]


def test_an_endpoint_turned_off_gets_nothing_and_turned_on_only_what_comes_next(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url)
    with session_scope() as s:  # as the delivery job leaves a failing endpoint
        s.execute(
            text("UPDATE webhook_endpoints SET consecutive_failures = 7 WHERE id = :id"),
            {"id": endpoint_id},
        )
    _update(tenant, endpoint_id, active=False)
    _event(tenant, ws, catalogue.HEALTH_ALERT)
    assert webhooks_deliver.run(FAST).attempted == 0
    assert receiver.requests == []

    _update(tenant, endpoint_id, active=True)
    hook = client.get(f"/api/v1/webhooks/{endpoint_id}", headers=tenant.headers).json()
    assert (hook["active"], hook["consecutive_failures"]) == (True, 0)
    _event(tenant, ws, catalogue.HEALTH_RECOVERED)
    assert webhooks_deliver.run(FAST).delivered == 1
    assert _types(receiver) == ["health.recovered"]  # not the alert made while it was off


def test_a_new_subscription_applies_from_now_on(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url, ["health.*"])
    _event(tenant, ws, catalogue.DNS_VERIFIED)  # not subscribed when it happened
    _update(tenant, endpoint_id, event_types=["dns.*"])
    _event(tenant, ws, catalogue.DNS_REGRESSED)
    _event(tenant, ws, catalogue.HEALTH_ALERT)  # no longer subscribed
    assert webhooks_deliver.run(FAST).delivered == 1
    assert _types(receiver) == ["dns.regressed"]

    _update(tenant, endpoint_id, url=receiver.url.replace("/hook", "/moved"))
    _event(tenant, ws, catalogue.DNS_VERIFIED)
    assert webhooks_deliver.run(FAST).delivered == 1
    assert [r.path for r in receiver.requests] == ["/hook", "/moved"]


# --- no way into our own network ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1/hook",  # shorthand forms resolvers accept
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://localhost./hook",
    ],
)
def test_internal_urls_are_refused_at_creation(
    client: TestClient, session: Session, url: str
) -> None:
    tenant = create_tenant(session)
    r = client.post("/api/v1/webhooks", json={"url": url}, headers=tenant.headers)
    assert r.status_code == 422, (url, r.text)
    assert r.json()["error"]["field"] == "url"


def test_delivery_to_an_internal_address_is_refused_and_logged(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, workspace_id = _tenant()
    # Registered while private URLs were allowed; the delivery runs with them disallowed.
    endpoint_id = _endpoint(tenant, receiver.url)
    _event(tenant, workspace_id)
    strict = delivery.DeliveryOptions(timeout=2, max_attempts=3, backoff=0, allow_private=False)
    report = webhooks_deliver.run(strict)
    assert (report.attempted, report.failed) == (1, 1)
    assert receiver.requests == []  # nothing left the building
    log = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers).json()[
        "items"
    ]
    assert "refused: 127.0.0.1 is internal" in json.dumps(log)


# --- secret rotation ------------------------------------------------------------------------


def test_rotate_shows_the_new_secret_once_and_stores_it_encrypted(
    client: TestClient, session: Session
) -> None:
    tenant, other = create_tenant(session), create_tenant(session)
    hook = _create(client, tenant)
    assert hook["previous_secret_expires_at"] is None
    r = client.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=tenant.headers)
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    assert rotated["id"] == hook["id"] and rotated["url"] == hook["url"]
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    grace = until - utcnow()
    assert timedelta(hours=23, minutes=59) < grace <= timedelta(hours=24)  # the default

    got = client.get(f"/api/v1/webhooks/{hook['id']}", headers=tenant.headers).json()
    assert "secret" not in got and got["previous_secret_expires_at"] is not None
    current, previous = session.execute(
        text(
            "SELECT secret_encrypted, previous_secret_encrypted FROM webhook_endpoints "
            "WHERE id = :id"
        ),
        {"id": hook["id"]},
    ).one()
    assert new not in current and hook["secret"] not in previous
    assert crypto.decrypt(current) == new and crypto.decrypt(previous) == hook["secret"]

    for who, webhook_id in ((other, hook["id"]), (tenant, str(uuid.uuid4()))):
        r = client.post(f"/api/v1/webhooks/{webhook_id}/rotate-secret", headers=who.headers)
        assert r.status_code == 404 and r.json()["error"]["field"] == "webhook_id"
    assert "secret" not in r.text


def _signature(request: Any) -> str:
    header: str = request.headers[signing.HEADER]
    return header


def test_within_the_grace_period_deliveries_verify_with_the_old_and_the_new_secret(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    with session_scope() as s:
        endpoint, old = webhooks.create(
            s, tenant.id, WebhookCreate(url=receiver.url), settings=get_settings()
        )
        endpoint_id = endpoint.id
    with session_scope() as s:
        _, new = webhooks.rotate_secret(s, tenant.id, endpoint_id, settings=get_settings())

    _event(tenant, ws)
    assert webhooks_deliver.run(FAST).delivered == 1
    during = receiver.requests[-1]
    assert _signature(during).count("v1=") == 2
    assert signing.verify(new, _signature(during), during.body)
    assert signing.verify(old, _signature(during), during.body)

    with session_scope() as s:  # the grace period ends
        s.execute(
            text(
                "UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1s' "
                "WHERE id = :id"
            ),
            {"id": endpoint_id},
        )
    _event(tenant, ws)
    assert webhooks_deliver.run(FAST).delivered == 1
    after = receiver.requests[-1]
    assert _signature(after).count("v1=") == 1
    assert signing.verify(new, _signature(after), after.body)
    assert not signing.verify(old, _signature(after), after.body)
    # ... and the job forgot the old secret
    with session_scope() as s:
        row = s.execute(
            text(
                "SELECT previous_secret_encrypted, previous_secret_expires_at "
                "FROM webhook_endpoints WHERE id = :id"
            ),
            {"id": endpoint_id},
        ).one()
    assert tuple(row) == (None, None)
    hook = client.get(f"/api/v1/webhooks/{endpoint_id}", headers=tenant.headers).json()
    assert hook["previous_secret_expires_at"] is None


def test_with_no_grace_period_the_old_secret_stops_at_once(
    committed: Engine,
    override_settings: OverrideSettings,
    allow_loopback: None,
    receiver: Receiver,
) -> None:
    override_settings(webhook_secret_grace_seconds=0)
    tenant, ws = _tenant()
    with session_scope() as s:
        endpoint, old = webhooks.create(
            s, tenant.id, WebhookCreate(url=receiver.url), settings=get_settings()
        )
    with session_scope() as s:
        rotated, new = webhooks.rotate_secret(s, tenant.id, endpoint.id, settings=get_settings())
        assert rotated.previous_secret_expires_at is None
    override_settings(webhook_secret_grace_seconds=None)  # back to the default
    _event(tenant, ws)
    assert webhooks_deliver.run(FAST).delivered == 1
    [request] = receiver.requests
    assert signing.verify(new, _signature(request), request.body)
    assert not signing.verify(old, _signature(request), request.body)


def test_a_second_rotation_within_the_grace_period_drops_the_oldest(
    committed: Engine, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    with session_scope() as s:
        endpoint, first = webhooks.create(
            s, tenant.id, WebhookCreate(url=receiver.url), settings=get_settings()
        )
    with session_scope() as s:
        _, second = webhooks.rotate_secret(s, tenant.id, endpoint.id, settings=get_settings())
    with session_scope() as s:
        _, third = webhooks.rotate_secret(s, tenant.id, endpoint.id, settings=get_settings())
    _event(tenant, ws)
    assert webhooks_deliver.run(FAST).delivered == 1
    [request] = receiver.requests
    header = _signature(request)
    assert [signing.verify(s, header, request.body) for s in (third, second, first)] == [
        True,
        True,
        False,
    ]


# --- test pings and redeliveries ------------------------------------------------------------


def test_a_test_ping_arrives_signed_and_is_logged(
    client: TestClient, session: Session, allow_loopback: None, receiver: Receiver
) -> None:
    tenant = create_tenant(session)
    hook = _create(client, tenant, url=receiver.url, event_types=["dns.*"])
    r = client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=tenant.headers)
    assert r.status_code == 200, r.text
    sent = r.json()
    assert (sent["event_type"], sent["status"], sent["attempts"]) == (
        "webhook.ping",
        "delivered",
        1,
    )
    assert [(a["number"], a["status_code"], a["error"]) for a in sent["log"]] == [(1, 200, None)]

    [request] = receiver.requests
    assert signing.verify(hook["secret"], request.headers[signing.HEADER], request.body)
    assert request.headers["PenguinMails-Delivery-Id"] == sent["id"]
    assert request.headers["PenguinMails-Event-Type"] == "webhook.ping"
    body = json.loads(request.body)
    assert body["type"] == "webhook.ping" and body["id"] == sent["event_id"]
    assert body["subject"] == {"type": "webhook", "id": hook["id"]}

    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=tenant.headers).json()
    assert [d["id"] for d in log["items"]] == [sent["id"]]
    told = client.get("/api/v1/events", params={"type": "webhook.*"}, headers=tenant.headers)
    assert [e["type"] for e in told.json()["items"]] == ["webhook.ping"]


def test_a_failed_test_ping_is_logged_and_counted(
    client: TestClient, session: Session, allow_loopback: None, receiver: Receiver
) -> None:
    receiver.status = 500
    tenant = create_tenant(session)
    hook = _create(client, tenant, url=receiver.url)
    r = client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=tenant.headers)
    assert r.status_code == 200, r.text
    sent = r.json()
    assert (sent["status"], sent["last_status_code"], sent["last_error"]) == (
        "pending",  # retried with backoff, like any delivery
        500,
        "HTTP 500",
    )
    assert len(receiver.requests) == 1
    got = client.get(f"/api/v1/webhooks/{hook['id']}", headers=tenant.headers).json()
    assert got["consecutive_failures"] == 1


def test_a_test_ping_goes_to_that_endpoint_only(
    committed: Engine, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, _ = _tenant()
    tested = _endpoint(tenant, receiver.url, ["health.*"])
    bystander = Receiver()
    try:
        _endpoint(tenant, bystander.url, ["*"])  # even `*` does not get another's ping
        sent = manual.ping(run_in_transaction, tenant.id, uuid.UUID(tested), FAST)
        assert sent.status == "delivered"
        assert webhooks_deliver.run(FAST).attempted == 0
        assert len(receiver.requests) == 1 and bystander.requests == []
    finally:
        bystander.close()


def test_an_inactive_endpoint_is_not_tested_or_redelivered_to(
    client: TestClient, session: Session, allow_loopback: None, receiver: Receiver
) -> None:
    tenant = create_tenant(session)
    hook = _create(client, tenant, url=receiver.url)
    sent = client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=tenant.headers).json()
    client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False}, headers=tenant.headers)
    for path in ("test", f"deliveries/{sent['id']}/redeliver"):
        r = client.post(f"/api/v1/webhooks/{hook['id']}/{path}", headers=tenant.headers)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["field"] == "active"
    assert len(receiver.requests) == 1


def test_redeliver_sends_the_event_again_and_logs_a_new_attempt(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    receiver.status = 500
    tenant, ws = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url)
    _event(tenant, ws)
    for _ in range(3):
        webhooks_deliver.run(FAST)
    log = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers).json()
    [dead] = log["items"]
    assert (dead["status"], dead["attempts"]) == ("dead", 3)

    receiver.status = 204  # the receiver is fixed
    url = f"/api/v1/webhooks/{endpoint_id}/deliveries/{dead['id']}/redeliver"
    r = client.post(url, headers=tenant.headers)
    assert r.status_code == 200, r.text
    again = r.json()
    assert (again["id"], again["event_id"]) == (dead["id"], dead["event_id"])
    assert (again["status"], again["attempts"], again["last_status_code"]) == ("delivered", 4, 204)
    assert [(a["number"], a["status_code"]) for a in again["log"]] == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 204),
    ]
    assert len(receiver.requests) == 4
    last = receiver.requests[-1]
    assert last.headers["PenguinMails-Delivery-Attempt"] == "4"
    assert last.body == receiver.requests[0].body  # the same event
    assert last.headers["PenguinMails-Event-Id"] == dead["event_id"]

    # a delivered one can be sent again too
    assert client.post(url, headers=tenant.headers).json()["attempts"] == 5
    assert len(receiver.requests) == 5


def test_every_new_route_is_404_for_another_tenant(
    committed: Engine, client: TestClient, allow_loopback: None, receiver: Receiver
) -> None:
    tenant, ws = _tenant()
    other, other_ws = _tenant()
    endpoint_id = _endpoint(tenant, receiver.url)
    others_endpoint = _endpoint(other, receiver.url)
    _event(tenant, ws)
    _event(other, other_ws)
    assert webhooks_deliver.run(FAST).delivered == 2
    [mine] = client.get(
        f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers
    ).json()["items"]
    [theirs] = client.get(
        f"/api/v1/webhooks/{others_endpoint}/deliveries", headers=other.headers
    ).json()["items"]

    base = f"/api/v1/webhooks/{endpoint_id}"
    for method, path, field in (
        ("PATCH", base, "webhook_id"),
        ("POST", f"{base}/test", "webhook_id"),
        ("POST", f"{base}/rotate-secret", "webhook_id"),
        ("POST", f"{base}/deliveries/{mine['id']}/redeliver", "webhook_id"),
        ("GET", f"{base}/deliveries?status=delivered", "webhook_id"),
    ):
        r = client.request(
            method, path, json={} if method == "PATCH" else None, headers=other.headers
        )
        assert (r.status_code, r.json()["error"]["field"]) == (404, field), (method, path, r.text)
    # nor a delivery of another endpoint through one's own
    r = client.post(f"{base}/deliveries/{theirs['id']}/redeliver", headers=tenant.headers)
    assert (r.status_code, r.json()["error"]["field"]) == (404, "delivery_id")
    r = client.post(f"{base}/deliveries/{uuid.uuid4()}/redeliver", headers=tenant.headers)
    assert (r.status_code, r.json()["error"]["field"]) == (404, "delivery_id")
    assert len(receiver.requests) == 2  # nothing was sent for any of these


# --- delivery log filters -------------------------------------------------------------------


def test_the_delivery_log_filters_by_status_event_type_and_time(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    hook = _create(client, tenant)
    now = utcnow()
    made = {}
    for name, type_, status, age in (
        ("old-alert", catalogue.HEALTH_ALERT, DeliveryStatus.DEAD, timedelta(days=3)),
        ("alert", catalogue.HEALTH_ALERT, DeliveryStatus.DELIVERED, timedelta(hours=5)),
        ("verified", catalogue.DNS_VERIFIED, DeliveryStatus.DELIVERED, timedelta(hours=2)),
        ("regressed", catalogue.DNS_REGRESSED, DeliveryStatus.PENDING, timedelta(minutes=1)),
    ):
        event = events.record(
            session, tenant_id=tenant.id, workspace_id=ws.id, type=type_, message=name
        )
        session.flush()
        row = WebhookDelivery(
            tenant_id=tenant.id,
            endpoint_id=uuid.UUID(hook["id"]),
            event_id=event.id,
            status=status.value,
            created_at=now - age,
        )
        session.add(row)
        session.flush()
        made[str(row.id)] = name

    def names(**params: str) -> list[str]:
        r = client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", params=params, headers=tenant.headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == len(body["items"])
        return [made[d["id"]] for d in body["items"]]

    assert names() == ["regressed", "verified", "alert", "old-alert"]  # newest first
    assert names(status="delivered") == ["verified", "alert"]
    assert names(status="dead") == ["old-alert"]
    assert names(event_type="health.alert") == ["alert", "old-alert"]
    assert names(event_type="dns.*") == ["regressed", "verified"]
    assert names(event_type="dns.*", status="pending") == ["regressed"]
    assert names(since=(now - timedelta(days=1)).isoformat()) == ["regressed", "verified", "alert"]
    assert names(until=(now - timedelta(hours=3)).isoformat()) == ["alert", "old-alert"]
    window = {
        "since": (now - timedelta(hours=6)).isoformat(),
        "until": (now - timedelta(hours=1)).isoformat(),
    }
    assert names(**window) == ["verified", "alert"]
    assert names(**window, event_type="health.*") == ["alert"]

    for params, field in (
        ({"status": "lost"}, "status"),
        ({"event_type": "dns_verified"}, "event_type"),
        ({"event_type": "nope.*"}, "event_type"),
        ({"since": "yesterday"}, "since"),
        ({"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()}, "until"),
    ):
        r = client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", params=params, headers=tenant.headers
        )
        assert (r.status_code, r.json()["error"]["field"]) == (422, field), r.text
