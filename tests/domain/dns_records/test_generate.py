"""Record generation and mail domains (no DNS server needed)."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.events import Event
from database.models.mail_domains import MailDomain
from domain.dns_records import service
from domain.mail_domains import service as mail_domains
from kit.errors import ValidationFailed
from maildns import plan
from settings import get_settings
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)


def records_of(session: Session, inbox_id: object) -> dict[str, DnsRecord]:
    rows = session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox_id)).all()
    return {r.purpose: r for r in rows}


def test_ensure_domain_is_idempotent_with_an_encrypted_rsa_2048_key(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    first = mail_domains.ensure_domain(session, workspace, "Example.ORG.", settings=get_settings())
    again = mail_domains.ensure_domain(session, workspace, "example.org", settings=get_settings())
    assert first.id == again.id and first.name == "example.org"
    assert first.dkim_selector.startswith("pm") and first.dkim_algorithm == "rsa"
    public = serialization.load_der_public_key(base64.b64decode(first.dkim_public_key))
    assert public.key_size == 2048  # type: ignore[union-attr]
    stored = session.execute(
        text("SELECT dkim_private_key_encrypted FROM mail_domains WHERE id = :i"), {"i": first.id}
    ).scalar_one()
    assert "PRIVATE KEY" not in stored and "PRIVATE KEY" in first.dkim_private_key_encrypted
    count = session.scalar(
        select(text("count(*)"))
        .select_from(MailDomain)
        .where(MailDomain.workspace_id == workspace.id)
    )
    assert count == 1


@pytest.mark.parametrize(
    "name", ["localhost", "exa mple.com", "-bad.com", "a..b", "x" * 64 + ".com"]
)
def test_ensure_domain_rejects_bad_names(session: Session, name: str) -> None:
    workspace = create_workspace(session, create_tenant(session))
    with pytest.raises(ValidationFailed) as err:
        mail_domains.ensure_domain(session, workspace, name, settings=get_settings())
    assert err.value.field == "domain"


def test_generate_writes_every_record_and_moves_inbox_to_dns_pending(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    server = create_server(session, workspace, hostname="mail.gen.example", ip_address="192.0.2.10")
    inbox = create_inbox(session, workspace, email_address="sales@gen.example", server=server)
    other = create_inbox(session, workspace, email_address="x@elsewhere.example", server=None)

    assert service.generate_for_server(session, server, settings=get_settings()) == 10
    records = records_of(session, inbox.id)
    assert set(records) == set(plan.PURPOSE_ORDER) - {"aaaa"}
    assert (records["mx"].record_name, records["mx"].record_value) == ("@", "10 mail.gen.example.")
    assert (records["a"].record_name, records["a"].record_value) == ("mail", "192.0.2.10")
    assert records["spf"].record_value == "v=spf1 ip4:192.0.2.10 ~all"
    assert records["dmarc"].record_name == "_dmarc"
    assert records["dmarc"].record_value == "v=DMARC1; p=none; rua=mailto:dmarc@gen.example"
    assert records["ptr"].record_name == "10.2.0.192.in-addr.arpa."
    assert records["ptr"].record_value == "mail.gen.example."
    domain = mail_domains.find(session, workspace.id, "gen.example")
    assert domain is not None
    dkim = records["dkim"]
    assert dkim.record_name == f"{domain.dkim_selector}._domainkey"
    # Over 255 characters: shown as quoted strings of at most 255, joining back to the value.
    assert dkim.record_value.startswith('"v=DKIM1; k=rsa; p=')
    strings = dkim.record_value.split('" "')
    assert len(strings) >= 2 and all(len(s.strip('"')) <= 255 for s in strings)
    assert plan.txt_join(dkim.record_value) == f"v=DKIM1; k=rsa; p={domain.dkim_public_key}"
    assert {r.required for p, r in records.items() if p in ("mta_sts", "tls_rpt")} == {False}
    assert all(r.verification_status == "pending" for r in records.values())
    session.refresh(inbox)
    session.refresh(other)
    assert inbox.status == "dns_pending" and other.status == "pending_setup"


def test_no_a_record_when_the_host_lies_outside_the_domain(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    server = create_server(session, workspace, hostname="mx1.fleet.example.net")
    inbox = create_inbox(session, workspace, email_address="a@outside.example", server=server)
    service.generate_for_server(session, server, settings=get_settings())
    records = records_of(session, inbox.id)
    assert "a" not in records and records["mx"].record_value == "10 mx1.fleet.example.net."


def test_server_without_an_ip_generates_nothing(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    server = create_server(session, workspace, ip_address=None, status="provisioning")
    inbox = create_inbox(session, workspace, server=server)
    assert service.generate_for_server(session, server, settings=get_settings()) == 0
    assert records_of(session, inbox.id) == {}


def test_regeneration_keeps_unchanged_statuses_and_resets_changed_ones(session: Session) -> None:
    tenant = create_tenant(session)
    workspace = create_workspace(session, tenant)
    create_mail_domain(session, workspace, name="regen.example")
    server = create_server(
        session, workspace, hostname="mail.regen.example", ip_address="192.0.2.20"
    )
    inbox = create_inbox(session, workspace, email_address="a@regen.example", server=server)
    service.generate_for_server(session, server, settings=get_settings())
    session.execute(
        text("UPDATE dns_records SET verification_status = 'verified' WHERE inbox_id = :i"),
        {"i": inbox.id},
    )
    inbox.status = "ready"
    session.flush()
    session.expire_all()

    assert (
        service.generate_for_server(session, server, settings=get_settings()) == 0
    )  # nothing changed
    assert {r.verification_status for r in records_of(session, inbox.id).values()} == {"verified"}

    server.ip_address = "192.0.2.21"
    session.flush()
    changed = service.generate_for_server(session, server, settings=get_settings())
    records = records_of(session, inbox.id)
    pending = {p for p, r in records.items() if r.verification_status == "pending"}
    assert pending == {"a", "spf", "ptr"} and changed == 3
    assert records["ptr"].record_name == "21.2.0.192.in-addr.arpa."
    session.refresh(inbox)
    assert inbox.status == "dns_pending"
    regressed = session.scalars(
        select(Event).where(Event.subject_id == inbox.id, Event.type == "dns.regressed")
    ).all()
    assert len(regressed) == 1


def test_spf_lists_every_server_of_the_domain(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    s1 = create_server(session, workspace, hostname="mx1.multi.example", ip_address="192.0.2.31")
    s2 = create_server(session, workspace, hostname="mx2.multi.example", ip_address="192.0.2.32")
    i1 = create_inbox(session, workspace, email_address="a@multi.example", server=s1)
    i2 = create_inbox(session, workspace, email_address="b@multi.example", server=s2)
    service.generate_for_server(session, s1, settings=get_settings())
    service.generate_for_server(session, s2, settings=get_settings())
    expected = "v=spf1 ip4:192.0.2.31 ip4:192.0.2.32 ~all"
    assert records_of(session, i1.id)["spf"].record_value == expected
    assert records_of(session, i2.id)["spf"].record_value == expected
    assert records_of(session, i2.id)["mx"].record_value == "10 mx2.multi.example."
