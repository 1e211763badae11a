"""GET/POST /api/v1/inboxes/{id}/dns-records against a real nsd."""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.inboxes import Inbox
from database.session import session_scope
from domain.dns_records import service
from scheduler.jobs.dns_verify import verify_due
from settings import get_settings
from tests.support.factories import (
    TenantWithKey,
    create_inbox,
    create_server,
    create_tenant,
    create_workspace,
)
from tests.support.fixtures import OverrideSettings
from tests.support.nsd import Nsd, running_nsd, silent_nameserver
from tests.support.published import publish_inbox
from tests.support.zones import new_ip, unique_zone


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-api")) as server:
        yield server


@pytest.fixture
def dns(nsd: Nsd, override_settings: OverrideSettings) -> Nsd:
    """Every lookup of the service goes to the test's nsd (PENGUINMAILS_DNS_NAMESERVERS)."""
    override_settings(dns_nameservers=nsd.nameservers, dns_timeout_seconds=0.5)
    return nsd


def provisioned(session: Session) -> tuple[TenantWithKey, Inbox]:
    domain = unique_zone("api")
    tenant = create_tenant(session)
    workspace = create_workspace(session, tenant)
    server = create_server(session, workspace, hostname=f"mail.{domain}", ip_address=new_ip())
    inbox = create_inbox(session, workspace, email_address=f"sales@{domain}", server=server)
    service.generate_for_server(session, server, settings=get_settings())
    return tenant, inbox


def events_of(session: Session, inbox_id: uuid.UUID, kind: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.subject_id == inbox_id, Event.type == kind)
        )
        or 0
    )


def test_records_appear_then_verify_readies_the_inbox(
    client: TestClient, session: Session, dns: Nsd
) -> None:
    tenant, inbox = provisioned(session)
    url = f"/api/v1/inboxes/{inbox.id}/dns-records"
    body = client.get(url, headers=tenant.headers).json()
    assert body["all_verified"] is False
    by_type = {(r["type"], r["name"]): r for r in body["records"]}
    assert ("TXT", "_dmarc") in by_type and ("MX", "@") in by_type and ("TXT", "@") in by_type
    for record in body["records"]:
        assert {"type", "name", "value", "status", "detail", "required", "last_verified_at"} <= set(
            record
        )
        assert record["status"] == "pending" and record["last_verified_at"] is None
    assert by_type[("TXT", "_dmarc")]["value"].startswith("v=DMARC1; p=none; rua=mailto:dmarc@")

    publish_inbox(session, dns, inbox.id)
    verified = client.post(url + "/verify", headers=tenant.headers)
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["all_verified"] is True, [(r["purpose"], r["detail"]) for r in body["records"]]
    assert all(r["status"] == "verified" and r["last_verified_at"] for r in body["records"])
    session.refresh(inbox)
    assert inbox.status == "ready"
    assert client.post(url + "/verify", headers=tenant.headers).json()["all_verified"] is True
    assert events_of(session, inbox.id, "dns.verified") == 1


def test_a_dead_nameserver_is_an_error_not_missing(
    client: TestClient, session: Session, override_settings: OverrideSettings
) -> None:
    tenant, inbox = provisioned(session)
    with silent_nameserver() as (host, port):
        override_settings(dns_nameservers=f"{host}:{port}", dns_timeout_seconds=0.5)
        body = client.post(
            f"/api/v1/inboxes/{inbox.id}/dns-records/verify", headers=tenant.headers
        ).json()
    assert body["all_verified"] is False
    assert {r["status"] for r in body["records"]} == {"error"}
    assert all("timeout" in r["detail"] for r in body["records"])


def test_another_tenants_inbox_is_404(client: TestClient, session: Session) -> None:
    _, inbox = provisioned(session)
    stranger = create_tenant(session)
    for method, suffix in (("GET", ""), ("POST", "/verify")):
        r = client.request(
            method, f"/api/v1/inboxes/{inbox.id}/dns-records{suffix}", headers=stranger.headers
        )
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    missing = client.get(f"/api/v1/inboxes/{uuid.uuid4()}/dns-records", headers=stranger.headers)
    assert missing.status_code == 404
    assert client.get(f"/api/v1/inboxes/{inbox.id}/dns-records").status_code == 401


def test_sweeps_after_verify_record_one_event_and_a_regression(committed: Engine, dns: Nsd) -> None:
    from api.app import create_app

    with session_scope() as session:
        tenant, inbox = provisioned(session)
        inbox_id, headers = inbox.id, tenant.headers
        publish_inbox(session, dns, inbox_id)
    url = f"/api/v1/inboxes/{inbox_id}/dns-records"
    with TestClient(create_app()) as client:
        assert client.post(url + "/verify", headers=headers).json()["all_verified"] is True
        for _ in range(3):
            with session_scope() as session:
                session.execute(text("UPDATE dns_records SET next_check_at = now()"))
            assert verify_due(get_settings()).claimed == 10
        with session_scope() as session:
            assert events_of(session, inbox_id, "dns.verified") == 1
            publish_inbox(session, dns, inbox_id, drop=["spf"])
            session.execute(text("UPDATE dns_records SET next_check_at = now()"))
        verify_due(get_settings())
        body = client.get(url, headers=headers).json()
    assert body["all_verified"] is False
    spf = next(r for r in body["records"] if r["purpose"] == "spf")
    assert spf["status"] == "missing" and "no v=spf1 record" in spf["detail"]
    with session_scope() as session:
        assert session.get_one(Inbox, inbox_id).status == "dns_pending"
        assert events_of(session, inbox_id, "dns.regressed") == 1
        assert events_of(session, inbox_id, "dns.verified") == 1
