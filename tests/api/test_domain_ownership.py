"""Domains belong to a tenant: the first to add an inbox on a domain owns it; another tenant gets
one 409 for the whole domain (nothing per address) and takes it over only by publishing a TXT
token, checked against a real nsd. The previous owner keeps what it has."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.deps import settings_dependency
from database.models.inboxes import Inbox
from database.models.mail_domains import DomainClaim, DomainOwner, MailDomain
from settings import Settings, get_settings
from tests.support.factories import TenantWithKey, create_tenant, create_workspace

try:  # the helper is moving to tests/support
    from tests.support.nsd import Nsd, running_nsd  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from tests.support.nsd import Nsd, running_nsd  # type: ignore[no-redef,unused-ignore]


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-claims")) as server:
        yield server


@pytest.fixture
def dns(client: TestClient, nsd: Nsd) -> Iterator[Nsd]:
    """The API's settings point every lookup at the test's nsd."""
    given: Settings = get_settings().model_copy(
        update={"dns_nameservers": nsd.nameservers, "dns_timeout_seconds": 0.5}
    )
    app: Any = client.app
    app.dependency_overrides[settings_dependency] = lambda: given
    yield nsd
    app.dependency_overrides.pop(settings_dependency, None)


def _inbox(address: str) -> dict[str, Any]:
    return {
        "email_address": address,
        "display_name": "Someone",
        "vps_provider": "hetzner",
        "vps_size": "professional",
    }


def _tenant(session: Session) -> tuple[TenantWithKey, str]:
    tenant = create_tenant(session)
    return tenant, str(create_workspace(session, tenant).id)


def _create(client: TestClient, who: TenantWithKey, ws: str, address: str) -> Any:
    return client.post(
        f"/api/v1/workspaces/{ws}/inboxes", json=_inbox(address), headers=who.headers
    )


def _domain() -> str:
    return f"corp-{uuid.uuid4().hex[:10]}.example"


def test_the_first_tenant_owns_the_domain(client: TestClient, session: Session) -> None:
    a, ws_a = _tenant(session)
    domain = _domain()
    assert _create(client, a, ws_a, f"ceo@{domain}").status_code == 202
    owner = session.get_one(DomainOwner, domain)
    assert owner.tenant_id == a.tenant.id and owner.claim_id is None
    # The owner adds more, in another workspace too.
    other_ws = str(create_workspace(session, a).id)
    assert _create(client, a, other_ws, f"sales@{domain.upper()}").status_code == 202


def test_another_tenant_gets_one_answer_for_existing_and_new_addresses(
    client: TestClient, session: Session
) -> None:
    a, ws_a = _tenant(session)
    b, ws_b = _tenant(session)
    domain = _domain()
    assert _create(client, a, ws_a, f"ceo@{domain}").status_code == 202

    existing = _create(client, b, ws_b, f"ceo@{domain}")
    missing = _create(client, b, ws_b, f"nobody-{uuid.uuid4().hex[:6]}@{domain}")
    case_variant = _create(client, b, ws_b, f"CEO@{domain.upper()}")
    for r in (existing, missing, case_variant):
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert error["code"] == "domain_claimed"
        assert error["field"] == "email_address"
        assert "claimed by another account" in error["message"]
        assert "ceo" not in error["message"].lower().replace(domain, "")
    # Nothing per address: the two answers are the same, byte for byte.
    assert existing.json() == missing.json() == case_variant.json()

    # And B created nothing on A's domain: no inbox, no DKIM key of its own.
    assert (
        session.scalar(
            select(func.count()).select_from(Inbox).where(Inbox.tenant_id == b.tenant.id)
        )
        == 0
    )
    assert (
        session.scalar(
            select(func.count()).select_from(MailDomain).where(MailDomain.tenant_id == b.tenant.id)
        )
        == 0
    )


def _claim(client: TestClient, who: TenantWithKey, ws: str, domain: str) -> Any:
    r = client.post(
        f"/api/v1/workspaces/{ws}/domain-claims", json={"domain": domain}, headers=who.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_claim_by_txt_token_moves_future_inboxes_only(
    client: TestClient, session: Session, dns: Nsd
) -> None:
    a, ws_a = _tenant(session)
    b, ws_b = _tenant(session)
    domain = _domain()
    first = _create(client, a, ws_a, f"ceo@{domain}")
    assert first.status_code == 202
    a_inbox = session.get_one(Inbox, uuid.UUID(first.json()["id"]))
    a_before = (a_inbox.tenant_id, a_inbox.workspace_id, a_inbox.email_address, a_inbox.status)
    a_key = session.scalars(
        select(MailDomain.dkim_public_key).where(MailDomain.tenant_id == a.tenant.id)
    ).one()

    claim = _claim(client, b, ws_b, domain.upper())
    assert claim["domain"] == domain
    assert claim["record_name"] == f"_penguinmails-claim.{domain}"
    assert claim["record_type"] == "TXT"
    assert claim["value"].startswith("penguinmails-claim=") and len(claim["value"]) > 30
    assert claim["verified"] is False

    # Not published yet: a clear 409, and nothing changes hands.
    dns.publish({domain: '@ IN TXT "v=spf1 -all"'})
    r = client.post(f"/api/v1/domain-claims/{claim['id']}/verify", headers=b.headers)
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "claim_not_verified"
    assert claim["record_name"] in error["message"] and claim["value"] in error["message"]
    assert session.get_one(DomainOwner, domain).tenant_id == a.tenant.id
    assert _create(client, b, ws_b, f"new@{domain}").json()["error"]["code"] == "domain_claimed"

    # Published (among other TXT records, and a wrong token beside it): verified.
    dns.publish(
        {
            domain: (
                f'_penguinmails-claim IN TXT "penguinmails-claim=not-this-one"\n'
                f'_penguinmails-claim IN TXT "{claim["value"]}"\n'
            )
        }
    )
    r = client.post(f"/api/v1/domain-claims/{claim['id']}/verify", headers=b.headers)
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True and r.json()["verified_at"]
    owner = session.get_one(DomainOwner, domain)
    assert (owner.tenant_id, owner.claim_id) == (b.tenant.id, uuid.UUID(claim["id"]))
    again = client.post(f"/api/v1/domain-claims/{claim['id']}/verify", headers=b.headers)
    assert again.status_code == 200 and again.json() == r.json()

    # B creates on the domain now, with its own DKIM key; A's inbox is taken, one mailbox each.
    created = _create(client, b, ws_b, f"new@{domain}")
    assert created.status_code == 202, created.text
    taken = _create(client, b, ws_b, f"CEO@{domain}").json()["error"]
    assert (taken["code"], taken["field"]) == ("conflict", "email_address")
    assert taken["message"] == f"an inbox for CEO@{domain} already exists"
    b_key = session.scalars(
        select(MailDomain.dkim_public_key).where(MailDomain.tenant_id == b.tenant.id)
    ).one()
    assert b_key != a_key

    # A keeps everything it had: the inbox, its DKIM key; it can still manage the inbox, but
    # adds no new ones on the domain.
    session.refresh(a_inbox)
    assert (
        a_inbox.tenant_id,
        a_inbox.workspace_id,
        a_inbox.email_address,
        a_inbox.status,
    ) == a_before
    assert (
        session.scalars(
            select(MailDomain.dkim_public_key).where(MailDomain.tenant_id == a.tenant.id)
        ).one()
        == a_key
    )
    patched = client.patch(
        f"/api/v1/inboxes/{a_inbox.id}", json={"daily_send_limit": 10}, headers=a.headers
    )
    assert patched.status_code == 200, patched.text
    refused = _create(client, a, ws_a, f"cfo@{domain}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "domain_claimed"


def test_claim_routes_are_tenant_scoped(client: TestClient, session: Session) -> None:
    a, ws_a = _tenant(session)
    b, _ = _tenant(session)
    claim = _claim(client, a, ws_a, _domain())
    assert client.get(f"/api/v1/domain-claims/{claim['id']}", headers=a.headers).json() == claim
    for r in (
        client.get(f"/api/v1/domain-claims/{claim['id']}", headers=b.headers),
        client.post(f"/api/v1/domain-claims/{claim['id']}/verify", headers=b.headers),
        client.post(
            f"/api/v1/workspaces/{ws_a}/domain-claims",
            json={"domain": _domain()},
            headers=b.headers,
        ),
    ):
        assert r.status_code == 404, r.text
    assert (
        session.scalar(
            select(func.count())
            .select_from(DomainClaim)
            .where(DomainClaim.tenant_id == b.tenant.id)
        )
        == 0
    )


def test_claim_input_is_checked(client: TestClient, session: Session) -> None:
    a, ws_a = _tenant(session)
    domain = _domain()
    assert _create(client, a, ws_a, f"ceo@{domain}").status_code == 202
    url = f"/api/v1/workspaces/{ws_a}/domain-claims"
    owned = client.post(url, json={"domain": domain}, headers=a.headers)
    assert owned.status_code == 409 and owned.json()["error"]["field"] == "domain"
    for bad in ({"domain": "no_dots"}, {"domain": 5}, {"domain": domain, "extra": 1}):
        r = client.post(url, json=bad, headers=a.headers)
        assert r.status_code == 422, (bad, r.text)


def test_claim_create_is_idempotent(client: TestClient, session: Session) -> None:
    a, ws_a = _tenant(session)
    url = f"/api/v1/workspaces/{ws_a}/domain-claims"
    headers = {**a.headers, "Idempotency-Key": "claim-1"}
    body = {"domain": _domain()}
    first = client.post(url, json=body, headers=headers)
    second = client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"
    assert (
        session.scalar(
            select(func.count())
            .select_from(DomainClaim)
            .where(DomainClaim.tenant_id == a.tenant.id)
        )
        == 1
    )
