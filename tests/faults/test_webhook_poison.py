"""One tenant's broken webhook rows never stop another tenant's webhooks.

Tenant A's endpoints are poisoned the way an old row or a write around the API would leave them
(written straight into the database); tenant B's endpoint is a healthy receiver on loopback. The
delivery job runs several times: it never raises, B gets every event, A's deliveries are logged
as failed with the reason, and A's endpoints end disabled with a `webhook.disabled` event.

Nothing here asks the machine's resolver: every poisoned URL fails before a name is resolved,
every healthy one is an IP literal on loopback."""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from database.models.webhooks import WebhookEndpoint
from database.session import session_scope
from domain.events import catalogue
from domain.events import service as events
from domain.events.catalogue import EventType
from domain.webhooks import delivery, signing
from domain.webhooks import service as webhooks
from domain.webhooks.schemas import WebhookCreate
from scheduler.jobs import webhooks_deliver
from settings import get_settings
from tests.support.factories import TenantWithKey, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings
from tests.support.receiver import Receiver

FAST = delivery.DeliveryOptions(
    timeout=2, max_attempts=3, backoff=0, allow_private=True, disable_after=3
)


@pytest.fixture
def allow_loopback(override_settings: OverrideSettings) -> None:
    override_settings(webhook_allow_private_urls=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def a_receiver() -> Iterator[Receiver]:
    """Where tenant A's well-formed but otherwise broken endpoints point: must get nothing."""
    r = Receiver()
    yield r
    r.close()


def _tenant() -> tuple[TenantWithKey, uuid.UUID]:
    with session_scope() as s:
        tenant = create_tenant(s)
        return tenant, create_workspace(s, tenant).id


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


def _endpoint(tenant: TenantWithKey, url: str) -> uuid.UUID:
    """Through the service, as the API creates it."""
    with session_scope() as s:
        endpoint, _ = webhooks.create(s, tenant.id, WebhookCreate(url=url), settings=get_settings())
        return endpoint.id


def _raw_endpoint(tenant: TenantWithKey, url: str, set_sql: str | None = None) -> uuid.UUID:
    """Straight into the table, around the API's validation (an old row, a bypass); `set_sql`
    then overwrites columns raw (EncryptedText would encrypt a garbage secret)."""
    with session_scope() as s:
        endpoint = WebhookEndpoint(
            tenant_id=tenant.id, url=url, event_types=["*"], secret_encrypted=signing.new_secret()
        )
        s.add(endpoint)
        s.flush()
        if set_sql:
            s.execute(
                text(f"UPDATE webhook_endpoints SET {set_sql} WHERE id = :id"),  # noqa: S608 - test's own SQL
                {"id": endpoint.id},
            )
        return endpoint.id


def _log(client: TestClient, tenant: TenantWithKey, endpoint_id: uuid.UUID) -> list[Any]:
    r = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=tenant.headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert isinstance(items, list)
    return sorted(items, key=lambda d: d["created_at"])


def _webhook(client: TestClient, tenant: TenantWithKey, endpoint_id: uuid.UUID) -> Any:
    r = client.get(f"/api/v1/webhooks/{endpoint_id}", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


@contextmanager
def _refuse_inserts(table: str, condition: str) -> Iterator[None]:
    """A row Postgres itself refuses: a trigger raising for rows matching `condition` (SQL over
    NEW), dropped afterwards. A real database fault, no mock."""
    name = f"pm_test_refuse_{table}"
    with session_scope() as s:
        s.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {condition} THEN RAISE EXCEPTION 'poisoned row (test)'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        s.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        with session_scope() as s:
            s.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            s.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


def test_poisoned_endpoints_never_stop_another_tenants_webhooks(
    committed: Engine,
    client: TestClient,
    allow_loopback: None,
    receiver: Receiver,
    a_receiver: Receiver,
) -> None:
    a, a_ws = _tenant()
    b, b_ws = _tenant()
    poisoned = {
        # httpx cannot build the URL (IDNA refuses the emoji): it used to abort the whole job.
        _raw_endpoint(a, "https://📬.example.com/x"): "unusable URL: Invalid IDNA hostname",
        # httpx builds it; the guard refuses it (getaddrinfo would raise UnicodeError).
        _raw_endpoint(a, f"https://{'a' * 64}.example.com/x"): "unusable URL: the host has a "
        "label of 64 characters",
        # A healthy URL, but the secret no longer decrypts: the job cannot even be prepared.
        _raw_endpoint(a, a_receiver.url, "secret_encrypted = 'garbage'"): "cannot prepare the "
        "delivery: a stored secret cannot be decrypted",
    }
    # event_types is a JSON string, not a list: the set-based fan-out used to fail on it.
    not_a_list = _raw_endpoint(a, a_receiver.url, "event_types = '\"health.*\"'")
    healthy = _endpoint(b, receiver.url)

    reports = []
    for _ in range(4):
        _event(a, a_ws)
        _event(b, b_ws)
        reports.append(webhooks_deliver.run(FAST))  # never raises

    # B received every event, each once, and only its own.
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert len(bodies) == 4
    assert {body["workspace_id"] for body in bodies} == {str(b_ws)}
    assert len({body["id"] for body in bodies}) == 4
    assert all(r.delivered == 1 for r in reports)
    b_hook = _webhook(client, b, healthy)
    assert (b_hook["active"], b_hook["consecutive_failures"]) == (True, 0)
    assert [d["status"] for d in _log(client, b, healthy)] == ["delivered"] * 4

    # Nothing of A's left the building.
    assert a_receiver.requests == []

    # A's first delivery per endpoint: three failed attempts with the reason, then dead; the
    # endpoint then disabled, its other pending deliveries given up with the reason.
    for endpoint_id, reason in poisoned.items():
        log = _log(client, a, endpoint_id)
        first = log[0]
        assert (first["status"], first["attempts"], first["last_status_code"]) == ("dead", 3, None)
        assert [a["number"] for a in first["log"]] == [1, 2, 3]
        assert all(reason in a["error"] for a in first["log"]), first["log"]
        assert len(log) == 3  # events 1-3; event 4 came after the endpoint was disabled
        for later in log[1:]:
            assert later["status"] == "dead"
            assert "not attempted: endpoint disabled after" in later["last_error"]
        hook = _webhook(client, a, endpoint_id)
        assert hook["active"] is False
        assert hook["consecutive_failures"] == 6  # 1 + 2 + 3 attempts over three runs
    assert set(reports[2].disabled) == set(poisoned)

    # ... and A is told why, once per endpoint.
    r = client.get("/api/v1/events", params={"type": "webhook.disabled"}, headers=a.headers)
    told = {e["subject_id"]: e for e in r.json()["items"]}
    assert set(told) == {str(e) for e in poisoned}
    for endpoint_id, reason in poisoned.items():
        event = told[str(endpoint_id)]
        assert event["subject_type"] == "webhook"
        assert reason in event["message"] and reason in event["data"]["last_error"]
        assert event["data"]["consecutive_failures"] == 6
    r = client.get("/api/v1/events", params={"type": "webhook.disabled"}, headers=b.headers)
    assert r.json()["total"] == 0

    # The fan-out skipped the malformed row on every run, reported with its id.
    for report in reports:
        assert [(s.step, s.row_id) for s in report.skipped] == [("fan_out", not_a_list)]
        assert "event_types is not a list" in report.skipped[0].reason
    assert _log(client, a, not_a_list) == []


def test_an_exception_while_building_headers_fails_that_delivery_only(
    committed: Engine,
    client: TestClient,
    allow_loopback: None,
    receiver: Receiver,
    a_receiver: Receiver,
) -> None:
    a, a_ws = _tenant()
    b, b_ws = _tenant()
    a_endpoint = _endpoint(a, a_receiver.url)
    _endpoint(b, receiver.url)
    # A header value must be ASCII: httpx raises UnicodeEncodeError (not an httpx.HTTPError)
    # while building the request.
    # Not a type of the catalogue: written as an old row or a bug would leave it.
    _event(a, a_ws, EventType("health.ålert", "not ASCII", "vps", "broken"))
    _event(a, a_ws)
    _event(b, b_ws)

    report = webhooks_deliver.run(FAST)
    assert (report.attempted, report.delivered, report.failed) == (3, 2, 1)
    assert len(receiver.requests) == 1
    assert [json.loads(r.body)["type"] for r in a_receiver.requests] == ["health.alert"]
    failed = next(d for d in _log(client, a, a_endpoint) if d["event_type"] == "health.ålert")
    assert failed["status"] == "pending"  # retried with backoff
    assert failed["log"][0]["error"].startswith("delivery failed: UnicodeEncodeError")
    # A success on the same endpoint in the same run: the endpoint is not failing.
    assert _webhook(client, a, a_endpoint)["consecutive_failures"] == 0


def test_a_row_that_breaks_the_fan_out_costs_only_its_endpoint(
    committed: Engine,
    client: TestClient,
    allow_loopback: None,
    receiver: Receiver,
    a_receiver: Receiver,
) -> None:
    a, a_ws = _tenant()
    b, b_ws = _tenant()
    a_endpoint = _endpoint(a, a_receiver.url)
    b_endpoint = _endpoint(b, receiver.url)
    _event(a, a_ws)
    _event(b, b_ws)
    with _refuse_inserts("webhook_deliveries", f"NEW.endpoint_id = '{a_endpoint}'"):
        report = webhooks_deliver.run(FAST)
    assert (report.fanned_out, report.delivered) == (1, 1)
    assert len(receiver.requests) == 1 and a_receiver.requests == []
    assert [(s.step, s.row_id) for s in report.skipped] == [("fan_out", a_endpoint)]
    assert "poisoned row (test)" in report.skipped[0].reason
    assert [d["status"] for d in _log(client, b, b_endpoint)] == ["delivered"]

    # Once the row can be written, the endpoint catches up.
    assert webhooks_deliver.run(FAST).delivered == 1
    assert len(a_receiver.requests) == 1


def test_an_outcome_that_cannot_be_recorded_is_skipped_and_reported(
    committed: Engine,
    client: TestClient,
    allow_loopback: None,
    receiver: Receiver,
    a_receiver: Receiver,
) -> None:
    a, a_ws = _tenant()
    b, b_ws = _tenant()
    a_endpoint = _endpoint(a, a_receiver.url)
    b_endpoint = _endpoint(b, receiver.url)
    _event(a, a_ws)
    _event(b, b_ws)
    refused = (
        "EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = NEW.delivery_id "  # noqa: S608
        f"AND d.endpoint_id = '{a_endpoint}')"
    )
    with _refuse_inserts("webhook_attempts", refused):
        report = webhooks_deliver.run(FAST)
    assert report.attempted == 2
    [skipped] = report.skipped
    (a_delivery,) = _log(client, a, a_endpoint)
    assert (skipped.step, str(skipped.row_id)) == ("record", a_delivery["id"])
    assert "poisoned row (test)" in skipped.reason
    # A's outcome was not written (still pending, leased, no attempt logged); B's was.
    assert (a_delivery["status"], a_delivery["log"]) == ("pending", [])
    assert [d["status"] for d in _log(client, b, b_endpoint)] == ["delivered"]
