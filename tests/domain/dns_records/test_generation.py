"""Set-based generation (`generation.generate_for_servers`) writes exactly the rows that the
per-server path (`service.generate_for_server`, one server after another) writes."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.events import Event
from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from domain.dns_records import generation, service
from settings import get_settings
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
NEW_DOMAIN = "fresh.example"  # no mail_domains row: generation creates it (a new DKIM key)


def _fleet(session: Session) -> tuple[list[VpsServer], uuid.UUID]:
    """Three target servers and one that is not: shared domains, an inbox on a server without an
    IP, a deleting inbox, ready inboxes whose records change or do not, stored rows that are
    current, stale (a changed IP, a changed TTL only, a published one, a purpose no longer
    planned) or missing, and a domain with no mail_domains row."""
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    for name in ("shared.example", "solo.example", "ready.example"):
        create_mail_domain(session, ws, name=name)
    s1 = create_server(session, ws, name="mx1", hostname="mx1.shared.example",
                       ip_address="192.0.2.11")  # fmt: skip
    s2 = create_server(session, ws, name="mx2", hostname="mx2.fleet.example",
                       ip_address="192.0.2.12")  # fmt: skip
    s3 = create_server(session, ws, name="mx3", hostname="mx3.fleet.example",
                       ip_address="192.0.2.13")  # fmt: skip
    other = create_server(session, ws, name="mx4", hostname="mx4.fleet.example",
                          ip_address="192.0.2.14")  # fmt: skip
    bare = create_server(session, ws, name="mx5", ip_address=None, status="provisioning")
    s2.ipv6_address = "2001:db8::12"
    inboxes = {
        "a": create_inbox(session, ws, email_address="a@shared.example", server=s1),
        "b": create_inbox(session, ws, email_address="b@Shared.example", server=s2),
        "c": create_inbox(session, ws, email_address="c@shared.example", server=other),
        "d": create_inbox(session, ws, email_address="d@shared.example", server=bare),
        "e": create_inbox(session, ws, email_address="e@solo.example", server=s2),
        "f": create_inbox(session, ws, email_address="f@shared.example", server=s3,
                          status="deleting"),
        "g": create_inbox(session, ws, email_address="g@ready.example", server=s3,
                          status="ready"),
        "h": create_inbox(session, ws, email_address="h@ready.example", server=s1,
                          status="ready"),
        "i": create_inbox(session, ws, email_address="i@fresh.example", server=s3),
        "j": create_inbox(session, ws, email_address="j@solo.example", server=s2,
                          status="failed"),
    }  # fmt: skip
    session.flush()
    # Records as an earlier generation left them, then the fleet changed under them.
    service.generate_for_server(session, s1, settings=get_settings())
    service.generate_for_server(session, s3, settings=get_settings())
    session.execute(
        text("UPDATE dns_records SET next_check_at = :t, verification_status = 'verified', "
             "last_verified_at = :t, detail = 'ok'"),
        {"t": LONG_AGO},
    )  # fmt: skip
    g, h = inboxes["g"].id, inboxes["h"].id
    session.execute(
        text("UPDATE dns_records SET ttl = 60 WHERE inbox_id = :h AND purpose = 'mx'"), {"h": h}
    )
    session.execute(
        text("UPDATE dns_records SET publish_status = 'published', publish_detail = 'x', "
             "published_at = :t WHERE inbox_id = :g AND purpose IN ('spf', 'mx')"),
        {"g": g, "t": LONG_AGO},
    )  # fmt: skip
    session.execute(
        text("UPDATE dns_records SET record_value = 'stale' WHERE inbox_id = :h AND purpose = "
             "'dmarc'"),
        {"h": h},
    )  # fmt: skip
    session.execute(
        text("INSERT INTO dns_records (inbox_id, domain, record_type, record_name, "
             "record_value, purpose, next_check_at) VALUES (:g, 'ready.example', 'TXT', "
             "'old', 'gone', 'retired', :t)"),
        {"g": g, "t": LONG_AGO},
    )  # fmt: skip
    session.execute(
        text("UPDATE inboxes SET status = 'ready' WHERE id IN (:g, :h)"), {"g": g, "h": h}
    )
    s3.ip_address = "192.0.2.23"  # g's a, spf and ptr change
    session.flush()
    session.expire_all()
    return [s2, s1, bare, s3], ws.id


def _snapshot(
    session: Session, workspace_id: uuid.UUID, known: frozenset[uuid.UUID] = frozenset()
) -> dict[str, Any]:
    def when(t: datetime | None) -> str | None:
        return None if t is None else ("long ago" if t == LONG_AGO else "now")

    records = {}
    for r in session.scalars(
        select(DnsRecord).join(Inbox, Inbox.id == DnsRecord.inbox_id)
        .where(Inbox.workspace_id == workspace_id)
    ):  # fmt: skip
        fresh = r.domain == NEW_DOMAIN and r.purpose == "dkim"
        records[r.inbox_id, r.purpose] = (
            r.domain, r.record_type, r.record_name, "<new key>" if fresh else r.record_value,
            r.ttl, r.required, r.verification_status, r.detail, when(r.last_verified_at),
            when(r.next_check_at), r.publish_status, r.publish_detail, when(r.published_at),
            r.id in known,  # an updated row keeps its id
        )  # fmt: skip
    statuses = dict(
        (i, st)
        for i, st in session.execute(
            select(Inbox.id, Inbox.status).where(Inbox.workspace_id == workspace_id)
        )
    )
    happened = sorted(
        (e.type, str(e.subject_id), e.message, str(e.data), e.workspace_name)
        for e in session.scalars(select(Event).where(Event.workspace_id == workspace_id))
    )
    return {"records": records, "inboxes": statuses, "events": happened}


@pytest.mark.parametrize("applied", [None, {"a@shared.example", "e@solo.example"}])
def test_set_based_rows_equal_the_per_server_path(
    session: Session, applied: set[str] | None
) -> None:
    servers, ws = _fleet(session)
    before = _snapshot(session, ws)
    known = frozenset(session.scalars(select(DnsRecord.id)))
    settings = get_settings()

    per_server = session.begin_nested()
    counts = [
        service.generate_for_server(session, s, settings=settings, applied=applied) for s in servers
    ]
    session.flush()
    expected = _snapshot(session, ws, known)
    per_server.rollback()
    session.expire_all()
    assert _snapshot(session, ws) == before

    got = generation.generate_for_servers(
        session, [s.id for s in servers], settings=settings, applied=applied
    )
    assert _snapshot(session, ws, known) == expected
    assert [got[s.id] for s in servers] == counts
    assert sum(counts) > 0 and expected != before
    assert {e[0] for e in expected["events"]} == {"dns.regressed"}
    assert {r[10] for r in expected["records"].values()} == {"manual", "pending", "published"}
    # Idempotent: a second run changes nothing and writes nothing.
    again = generation.generate_for_servers(
        session, [s.id for s in servers], settings=settings, applied=applied
    )
    assert set(again.values()) == {0} and _snapshot(session, ws, known) == expected


def test_the_session_sees_the_written_rows(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    server = create_server(session, workspace, hostname="mail.seen.example", ip_address="192.0.2.9")
    inbox = create_inbox(session, workspace, email_address="x@seen.example", server=server)
    written = generation.generate_for_servers(session, [server.id], settings=get_settings())
    assert written == {server.id: 10}
    assert inbox.status == "dns_pending"  # expired by the raw UPDATE, read again
    assert len(session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox.id)).all()) == 10


def test_servers_without_an_address_or_inboxes_write_nothing(session: Session) -> None:
    workspace = create_workspace(session, create_tenant(session))
    bare = create_server(session, workspace, ip_address=None, status="provisioning")
    empty = create_server(session, workspace, hostname="mail.empty.example")
    create_inbox(session, workspace, server=bare)
    assert generation.generate_for_servers(
        session, [bare.id, empty.id], settings=get_settings()
    ) == {bare.id: 0, empty.id: 0}
    assert session.scalar(select(text("count(*)")).select_from(DnsRecord)) == 0
