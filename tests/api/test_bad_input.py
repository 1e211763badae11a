"""Issue 11: bad input is a 422 in the one error shape naming the field, and writes nothing.

Control characters (NUL was a 500 from Postgres) anywhere in a body, a query string or a path;
internationalised domains stored in ASCII and shown in Unicode; bodies that are not UTF-8; 405
answers that list every method of the path; every 4xx in the one shape."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import V1_ROUTERS, create_app
from api.retry import RetryingRoute
from automation.desired_state import build_fleet_config
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.webhooks import WebhookEndpoint
from database.models.workspaces import Workspace
from tests.support.factories import TenantWithKey, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings

JSON = {"Content-Type": "application/json"}


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _refused(r: Response, field: str, code: str = "validation_error") -> dict[str, Any]:
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field", "details"}
    error: dict[str, Any] = body["error"]
    assert error["code"] == code and error["field"] == field, error
    assert error["message"].startswith(f"{field}: "), error
    return error


def _setup(session: Session) -> tuple[TenantWithKey, str]:
    tenant = create_tenant(session)
    return tenant, str(create_workspace(session, tenant).id)


def _inbox(address: str = "sales@acme.example", **overrides: Any) -> dict[str, Any]:
    return {
        "email_address": address,
        "display_name": "Sales",
        "vps_provider": "hetzner",
        "vps_size": "starter",
        **overrides,
    }


# Control characters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_a_control_character_in_a_workspace_name_is_422_and_nothing_is_written(
    client: TestClient, session: Session, char: str
) -> None:
    tenant = create_tenant(session)
    r = client.post("/api/v1/workspaces", json={"name": f"ops{char}team"}, headers=tenant.headers)
    error = _refused(r, "name")
    assert f"U+{ord(char):04X}" in error["message"] and "position 3" in error["message"]
    assert error["details"][0]["location"] == "body"
    assert _count(session, Workspace) == 0


def test_an_escaped_nul_and_an_unpaired_surrogate_are_refused_too(
    client: TestClient, session: Session
) -> None:
    """JSON escapes decode to the same characters: `\\u0000`, and `\\ud800` (no pair), which
    Postgres cannot store either."""
    tenant = create_tenant(session)
    for raw, code in ((rb'{"name": "a\u0000b"}', "U+0000"), (rb'{"name": "a\ud800b"}', "U+D800")):
        r = client.post("/api/v1/workspaces", content=raw, headers={**tenant.headers, **JSON})
        assert code in _refused(r, "name")["message"]
    assert _count(session, Workspace) == 0


def test_nul_in_an_inbox_display_name_is_422_on_create_and_update(
    client: TestClient, session: Session
) -> None:
    tenant, ws = _setup(session)
    url = f"/api/v1/workspaces/{ws}/inboxes"
    _refused(
        client.post(url, json=_inbox(display_name="Sa\x00les"), headers=tenant.headers),
        "display_name",
    )
    assert _count(session, Inbox) == 0 and _count(session, VpsServer) == 0

    created = client.post(url, json=_inbox(), headers=tenant.headers)
    assert created.status_code == 202, created.text
    inbox_url = f"/api/v1/inboxes/{created.json()['id']}"
    r = client.patch(inbox_url, json={"display_name": "Sales\x00Team"}, headers=tenant.headers)
    _refused(r, "display_name")
    assert client.get(inbox_url, headers=tenant.headers).json()["display_name"] == "Sales"


def test_nul_in_a_webhook_description_is_422_and_nothing_is_written(
    client: TestClient, session: Session
) -> None:
    """The webhook routes get the check from their route class; their schema does not ask."""
    tenant = create_tenant(session)
    body = {"url": "https://hooks.example.com/in", "description": "ops\x00alerts"}
    _refused(client.post("/api/v1/webhooks", json=body, headers=tenant.headers), "description")
    nested = {"url": "https://hooks.example.com/in", "event_types": ["health.alert", "a\x00"]}
    _refused(client.post("/api/v1/webhooks", json=nested, headers=tenant.headers), "event_types.1")
    assert _count(session, WebhookEndpoint) == 0


def test_a_control_character_in_a_field_name_is_named_escaped(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.post("/api/v1/workspaces", json={"na\x00me": "x"}, headers=tenant.headers)
    assert "field name" in _refused(r, "na\\x00me")["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/workspaces/{ws}/inboxes?status=ready%00",
        "/api/v1/workspaces/{ws}/operations?status=queued%00",
        "/api/v1/vps/{ws}/health?status=%1b",  # an unknown parameter is checked too
    ],
)
def test_nul_in_a_query_parameter_is_422_naming_it(
    client: TestClient, session: Session, path: str
) -> None:
    tenant, ws = _setup(session)
    r = client.get(path.format(ws=ws), headers=tenant.headers)
    assert _refused(r, "status")["details"][0]["location"] == "query"


def test_every_api_route_has_the_checking_route_class() -> None:
    """The checks live in the route class: a router built without it would skip them."""
    for router in V1_ROUTERS:
        for route in router.routes:
            assert isinstance(route, RetryingRoute), (router.prefix, route)


# Internationalised domains -----------------------------------------------------------------


def test_an_internationalised_domain_is_stored_in_ascii_and_shown_in_unicode(
    client: TestClient, session: Session
) -> None:
    tenant, ws = _setup(session)
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes",
        json=_inbox("Info@BÜCHER.example"),
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["email_address"] == "Info@xn--bcher-kva.example"
    assert body["email_address_unicode"] == "Info@bücher.example"
    assert body["credentials"]["smtp"]["host"].endswith(".xn--bcher-kva.example")

    inbox = session.get_one(Inbox, uuid.UUID(body["id"]))
    assert inbox.email_address == "Info@xn--bcher-kva.example"
    assert session.scalars(select(MailDomain.name)).all() == ["xn--bcher-kva.example"]
    server = session.get_one(VpsServer, inbox.vps_id)
    assert server.hostname.isascii() and server.hostname.endswith(".xn--bcher-kva.example")
    # what the stack gets validates: the workspace is not poisoned
    config = build_fleet_config(session, session.get_one(Workspace, uuid.UUID(ws)))
    assert [m.address for m in config.mailboxes] == ["info@xn--bcher-kva.example"]

    got = client.get(f"/api/v1/inboxes/{body['id']}", headers=tenant.headers).json()
    assert got["email_address_unicode"] == "Info@bücher.example"
    vps = client.get(f"/api/v1/vps/{server.id}", headers=tenant.headers).json()
    assert vps["hostname_unicode"].endswith(".bücher.example")


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("info@😀.example", "IDNA"),  # not a letter IDNA 2008 allows
        ("info@bü_cher.example", "IDNA"),
        ("info@-bücher.example", "IDNA"),  # hyphen at the start of a label
        ("bücher@example.com", "ASCII"),  # a Unicode local part (SMTPUTF8)
        ("info@" + "ü" * 60 + ".example", "IDNA"),  # the A-label is over 63 characters
    ],
)
def test_an_address_that_cannot_be_encoded_is_422_naming_it(
    client: TestClient, session: Session, address: str, words: str
) -> None:
    tenant, ws = _setup(session)
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_inbox(address), headers=tenant.headers
    )
    assert words in _refused(r, "email_address")["message"]
    assert _count(session, Inbox) == 0 and _count(session, VpsServer) == 0
    assert _count(session, MailDomain) == 0


def test_a_domain_too_long_for_its_server_hostname_is_refused_before_anything_is_written(
    client: TestClient, session: Session
) -> None:
    """A 240-character domain is a valid mailbox domain, but `mail-<id>.<domain>` is over 253:
    accepted, it made every later run of the workspace fail."""
    tenant, ws = _setup(session)
    domain = ".".join(["a" * 59] * 4)  # 239 characters
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_inbox(f"x@{domain}"), headers=tenant.headers
    )
    assert "hostname of a server" in _refused(r, "email_address")["message"]
    assert _count(session, Inbox) == 0


def test_an_internationalised_server_hostname_is_stored_in_ascii(
    client: TestClient, session: Session
) -> None:
    tenant, ws = _setup(session)
    body = {"provider": "hetzner", "size": "starter", "region": "eu-central"}
    r = client.post(
        f"/api/v1/workspaces/{ws}/vps",
        json={**body, "hostname": "MX.Bücher.example"},
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    assert r.json()["hostname"] == "mx.xn--bcher-kva.example"
    assert r.json()["hostname_unicode"] == "mx.bücher.example"
    bad = client.post(
        f"/api/v1/workspaces/{ws}/vps",
        json={**body, "hostname": "mx.😀.example"},
        headers=tenant.headers,
    )
    assert "IDNA" in _refused(bad, "hostname")["message"]


# Bodies, methods, the error shape ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/workspaces", "/api/v1/webhooks"])
def test_a_body_that_is_not_utf8_is_422_naming_body(
    client: TestClient, session: Session, path: str
) -> None:
    tenant = create_tenant(session)
    r = client.post(path, content=b'{"name": "caf\xe9"}', headers={**tenant.headers, **JSON})
    assert "UTF-8" in _refused(r, "body")["message"]
    r = client.post(path, content=b'{"name": ', headers={**tenant.headers, **JSON})
    assert "JSON" in _refused(r, "body")["message"]
    assert _count(session, Workspace) == 0 and _count(session, WebhookEndpoint) == 0


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/workspaces", "GET, POST"),
        ("/api/v1/inboxes/{id}", "GET, PATCH, DELETE"),
        ("/api/v1/webhooks/{id}", "GET, PATCH, DELETE"),
        ("/api/v1/workspaces/{id}/inboxes", "GET, POST"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    client: TestClient, session: Session, path: str, methods: str
) -> None:
    tenant = create_tenant(session)
    r = client.put(path.format(id=uuid.uuid4()), json={}, headers=tenant.headers)
    assert r.status_code == 405, r.text
    assert r.headers["Allow"] == methods
    error = r.json()["error"]
    assert error["code"] == "method_not_allowed" and methods in error["message"]


def test_every_4xx_has_the_one_shape(
    client: TestClient, session: Session, override_settings: OverrideSettings
) -> None:
    tenant = create_tenant(session)
    answers = {
        404: client.get("/api/v1/no-such-thing", headers=tenant.headers),
        405: client.delete("/api/v1/workspaces", headers=tenant.headers),
        401: client.get("/api/v1/workspaces"),
        422: client.post("/api/v1/workspaces", json={"name": 5}, headers=tenant.headers),
    }
    override_settings(max_body_bytes=64)
    answers[413] = client.post(
        "/api/v1/workspaces", json={"name": "x" * 100}, headers=tenant.headers
    )
    for status, r in answers.items():
        assert r.status_code == status, (status, r.text)
        body = r.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message", "field", "details"}, body
        assert isinstance(body["error"]["details"], list)


def test_messages_show_values_not_placeholders(client: TestClient, session: Session) -> None:
    """pydantic fills `{name}` only: `{value!r}` was shown as it is."""
    tenant, ws = _setup(session)
    r = client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_inbox(vps_size="huge"), headers=tenant.headers
    )
    message = _refused(r, "vps_size")["message"]
    assert "'huge'" in message and "{" not in message


def test_the_app_answers_unknown_paths_in_the_shape_without_a_session() -> None:
    r = TestClient(create_app()).get("/nothing/here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_a_body_nested_too_deeply_is_422_naming_body(client: TestClient, session: Session) -> None:
    """json.loads raises RecursionError past ~1000 levels: it was FastAPI's 400 naming nothing
    (and, once the body was checked first, a 500)."""
    tenant = create_tenant(session)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = client.post("/api/v1/workspaces", content=deep, headers={**tenant.headers, **JSON})
    assert "nested too deeply" in _refused(r, "body")["message"]
    nested = b'{"a": ' * 500 + b'"x\\u0000"' + b"}" * 500  # deep, but parsed: the walk is flat
    r = client.post("/api/v1/workspaces", content=nested, headers={**tenant.headers, **JSON})
    _refused(r, ".".join(["a"] * 500))
