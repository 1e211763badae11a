"""The console in-process: sign-in, CSRF, tenant scoping, every page, and the forms' messages
beside the field at fault."""

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from console.web import CSP
from tests.support import factories

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(console: TestClient, api_key: str) -> str:
    page = console.get("/console/sign-in")
    assert page.status_code == 200
    done = console.post(
        "/console/sign-in",
        data={"api_key": api_key, "csrf_token": csrf_of(page.text), "next": "/console"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/console"
    return csrf_of(console.get("/console").text)


@pytest.fixture
def tenant(session: Session) -> factories.TenantWithKey:
    return factories.create_tenant(session)


def test_pages_need_a_sign_in(console: TestClient) -> None:
    answer = console.get("/console/events", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/events"


def test_the_session_cookie_is_httponly_strict_and_expiring(
    console: TestClient, tenant: factories.TenantWithKey
) -> None:
    page = console.get("/console/sign-in")
    done = console.post(
        "/console/sign-in",
        data={"api_key": tenant.api_key, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    assert "Path=/console" in cookie
    assert tenant.api_key not in cookie, "the key is encrypted in the cookie"
    assert "Secure" not in cookie  # plain HTTP here; `Secure` behind TLS


def test_the_cookie_is_secure_behind_tls(session: Session, tenant: factories.TenantWithKey) -> None:
    from cli.web import create_app
    from tests.support.clients import client_for

    with client_for(create_app(), session) as tls:
        tls.base_url = tls.base_url.copy_with(scheme="https")  # type: ignore[misc]
        page = tls.get("/console/sign-in")
        assert "Secure" in page.headers["set-cookie"]


def test_a_wrong_key_is_refused_beside_the_field(console: TestClient) -> None:
    page = console.get("/console/sign-in")
    answer = console.post(
        "/console/sign-in", data={"api_key": "pm_wrong", "csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 401
    assert 'id="e-api_key"' in answer.text
    assert console.get("/console", follow_redirects=False).status_code == 303


def test_a_form_without_its_csrf_token_is_refused(
    console: TestClient, tenant: factories.TenantWithKey
) -> None:
    sign_in(console, tenant.api_key)
    answer = console.post("/console/workspaces", data={"name": "no-token", "sandbox": "on"})
    assert answer.status_code == 403
    assert "security token" in answer.text
    wrong = console.post(
        "/console/workspaces", data={"name": "x", "sandbox": "on", "csrf_token": "forged"}
    )
    assert wrong.status_code == 403
    listing = console.get("/console")
    assert "no-token" not in listing.text


def test_sign_out_forgets_the_session(console: TestClient, tenant: factories.TenantWithKey) -> None:
    csrf = sign_in(console, tenant.api_key)
    done = console.post("/console/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert console.get("/console", follow_redirects=False).status_code == 303


def test_every_page_has_a_strict_csp(console: TestClient, tenant: factories.TenantWithKey) -> None:
    sign_in(console, tenant.api_key)
    page = console.get("/console")
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "default-src 'none'" in CSP
    assert "<script>" not in page.text and " style=" not in page.text
    assert not re.search(r'(src|href)="(https?:)?//', page.text), "nothing from another origin"


def test_create_a_workspace_then_an_inbox_from_the_forms(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    csrf = sign_in(console, tenant.api_key)
    made = console.post(
        "/console/workspaces",
        data={"name": "fleet one", "sandbox": "on", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    workspace_url = made.headers["location"]
    page = console.get(workspace_url)
    assert page.status_code == 200 and "fleet one" in page.text
    workspace_id = workspace_url.rsplit("/", 1)[1]
    created = console.post(
        f"/console/workspaces/{workspace_id}/inboxes",
        data={
            "email_address": "sales@console.example",
            "display_name": "Sales",
            "vps_provider": "hetzner",
            "vps_size": "starter",
            "csrf_token": csrf,
        },
    )
    assert created.status_code == 200, created.text
    assert "Shown once" in created.text and 'id="cred-pass"' in created.text
    password = re.search(r'id="cred-pass">([^<]+)<', created.text)
    assert password
    listing = console.get(workspace_url)
    assert "sales@console.example" in listing.text and "pending setup" in listing.text
    inbox_id = re.search(r'href="/console/inboxes/([0-9a-f-]{36})"', listing.text)
    assert inbox_id
    inbox_page = console.get(f"/console/inboxes/{inbox_id.group(1)}")
    assert inbox_page.status_code == 200
    assert password.group(1) not in inbox_page.text, "the password is shown once only"


def test_the_api_validation_messages_are_beside_the_field(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    csrf = sign_in(console, tenant.api_key)
    workspace = factories.create_workspace(session, tenant.tenant)
    bad = console.post(
        f"/console/workspaces/{workspace.id}/inboxes",
        data={
            "email_address": "not an address",
            "vps_provider": "hetzner",
            "vps_size": "huge",
            "csrf_token": csrf,
        },
    )
    assert bad.status_code == 422
    assert 'id="e-email_address"' in bad.text and 'id="e-vps_size"' in bad.text
    assert 'value="not an address"' in bad.text, "what was typed is kept"
    server = console.post(
        f"/console/workspaces/{workspace.id}/servers",
        data={
            "provider": "existing",
            "size": "starter",
            "region": "eu-central",
            "ip_address": "127.0.0.1",
            "csrf_token": csrf,
        },
    )
    assert server.status_code == 422
    assert 'id="e-ip_address"' in server.text and "loopback" in server.text
    empty = console.post("/console/workspaces", data={"name": " ", "csrf_token": csrf})
    assert empty.status_code == 422 and 'id="e-name"' in empty.text


def test_another_tenants_pages_are_404(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    other = factories.create_tenant(session)
    theirs = factories.create_workspace(session, other.tenant)
    server = factories.create_server(session, theirs)
    inbox = factories.create_inbox(session, theirs, server=server)
    csrf = sign_in(console, tenant.api_key)
    for url in (
        f"/console/workspaces/{theirs.id}",
        f"/console/inboxes/{inbox.id}",
        f"/console/inboxes/{inbox.id}/dns",
        f"/console/workspaces/{theirs.id}/operations",
        f"/console/operations/{uuid.uuid4()}",
        "/console/inboxes/not-a-uuid",
    ):
        page = console.get(url)
        assert page.status_code == 404, url
        assert page.headers["content-security-policy"] == CSP
    posted = console.post(
        f"/console/inboxes/{inbox.id}/delete", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert posted.status_code == 404
    session.refresh(inbox)
    assert inbox.status == "pending_setup"


def test_workspace_pages_pages_and_inbox_edit(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    workspace = factories.create_workspace(session, tenant.tenant)
    server = factories.create_server(session, workspace)
    inbox = factories.create_inbox(session, workspace, server=server, status="ready")
    csrf = sign_in(console, tenant.api_key)
    page = console.get(f"/console/workspaces/{workspace.id}")
    assert server.hostname in page.text and inbox.email_address in page.text
    bad = console.post(
        f"/console/inboxes/{inbox.id}",
        data={"daily_send_limit": "0", "display_name": "x", "csrf_token": csrf},
    )
    assert bad.status_code == 422 and 'id="e-daily_send_limit"' in bad.text
    ok = console.post(
        f"/console/inboxes/{inbox.id}",
        data={"daily_send_limit": "40", "display_name": "Team", "csrf_token": csrf},
        follow_redirects=True,
    )
    assert ok.status_code == 200 and "Saved." in ok.text
    session.refresh(inbox)
    assert inbox.daily_send_limit == 40 and inbox.display_name == "Team"
    rotated = console.post(f"/console/inboxes/{inbox.id}/rotate", data={"csrf_token": csrf})
    assert rotated.status_code == 200 and "Shown once" in rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    for url in (
        f"/console/inboxes/{inbox.id}/dns",
        f"/console/workspaces/{workspace.id}/operations",
        "/console/events",
        f"/console/events?workspace={workspace.id}&type=inbox.*",
        "/console/webhooks",
        f"/console/workspaces/{workspace.id}/inboxes/new",
        f"/console/workspaces/{workspace.id}/servers/new",
        "/console/workspaces/new",
    ):
        assert console.get(url).status_code == 200, url
    assert console.get("/console/events?type=nonsense").status_code == 422


def test_webhooks_created_with_the_secret_once_then_disabled(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    csrf = sign_in(console, tenant.api_key)
    bad = console.post(
        "/console/webhooks", data={"url": "ftp://x", "event_types": "*", "csrf_token": csrf}
    )
    assert bad.status_code == 422 and 'id="e-url"' in bad.text
    made = console.post(
        "/console/webhooks",
        data={"url": "https://hooks.example.com/in", "event_types": "*", "csrf_token": csrf},
    )
    assert made.status_code == 200, made.text
    assert 'id="wh-secret"' in made.text
    secret = re.search(r'id="wh-secret">([^<]+)<', made.text)
    webhook_id = re.search(r'href="/console/webhooks/([0-9a-f-]{36})"', made.text)
    assert secret and webhook_id
    detail = console.get(f"/console/webhooks/{webhook_id.group(1)}")
    assert detail.status_code == 200 and secret.group(1) not in detail.text
    off = console.post(
        f"/console/webhooks/{webhook_id.group(1)}/active",
        data={"active": "false", "csrf_token": csrf},
        follow_redirects=True,
    )
    assert "disabled" in off.text


def test_every_console_route_runs_the_request_checks() -> None:
    """As every API router: the console's route class is RetryingRoute's (api.checks)."""
    from api.retry import RetryingRoute
    from console.app import ROUTERS
    from console.web import ConsoleRoute

    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, ConsoleRoute) and isinstance(route, RetryingRoute), route


def test_control_characters_in_a_form_or_query_are_refused(
    console: TestClient, tenant: factories.TenantWithKey
) -> None:
    csrf = sign_in(console, tenant.api_key)
    form = console.post("/console/workspaces", data={"name": "a\x00b", "csrf_token": csrf})
    assert form.status_code == 422 and "control character" in form.text
    query = console.get("/console/events", params={"type": "a\x01"})
    assert query.status_code == 422


def test_visiting_sign_in_keeps_the_session(
    console: TestClient, tenant: factories.TenantWithKey
) -> None:
    sign_in(console, tenant.api_key)
    page = console.get("/console/sign-in")
    assert "set-cookie" not in page.headers
    assert console.get("/console", follow_redirects=False).status_code == 200


def test_the_delivery_log_shows_every_attempt() -> None:
    from datetime import UTC, datetime

    from console.web import templates
    from domain.webhooks.schemas import AttemptRead, DeliveryRead, WebhookRead

    now = datetime.now(UTC)
    webhook = WebhookRead(
        id=uuid.uuid4(),
        url="https://hooks.example.com/in",
        description="",
        event_types=["*"],
        active=True,
        consecutive_failures=1,
        previous_secret_expires_at=None,
        events_since=now,
        created_at=now,
    )
    delivery = DeliveryRead(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_type="health.alert",
        status="pending",
        attempts=2,
        next_attempt_at=now,
        last_status_code=503,
        last_error=None,
        delivered_at=None,
        created_at=now,
        log=[
            AttemptRead(
                number=1, status_code=None, error="timed out", duration_ms=10000, created_at=now
            ),
            AttemptRead(number=2, status_code=503, error=None, duration_ms=12.5, created_at=now),
        ],
    )
    html = templates.get_template("webhook.html").render(
        webhook=webhook, deliveries=[delivery], total=1, page=1, pages=1, csrf="t", refresh_ms=2000
    )
    assert "no answer (timed out), 10000 ms" in html and "503, 12 ms" in html


def test_the_inbox_shows_todays_enforced_cap_and_the_score_on_its_scale(
    console: TestClient, session: Session, tenant: factories.TenantWithKey
) -> None:
    """The cap shown is the one the mail server enforces (warmup, shares, holds), not the limit
    the user asked for; the reputation score reads on its 0.00-1.00 scale."""
    workspace = factories.create_workspace(session, tenant.tenant)
    server = factories.create_server(session, workspace)
    inbox = factories.create_inbox(session, workspace, server=server, status="ready")
    inbox.daily_send_limit, inbox.effective_daily_limit = 50, 7
    inbox.hold_reason, inbox.reputation_score = "listed", 0.62  # type: ignore[assignment]
    session.flush()
    sign_in(console, tenant.api_key)
    page = console.get(f"/console/inboxes/{inbox.id}").text
    assert "<dt>Daily cap today</dt><dd>7 (held: listed)</dd>" in page
    assert "0.62" in page
    listed = console.get(f"/console/workspaces/{workspace.id}").text
    assert '<td data-label="Daily cap">7</td>' in listed and "0.62" in listed
