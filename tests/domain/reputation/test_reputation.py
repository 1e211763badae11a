"""reputation_score from named signals with documented weights; a history row per change; the
API shows the score, each signal with value, weight and reason, and the paginated history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from database.models.warmup import ReputationSnapshot
from domain.reputation import service as reputation
from domain.reputation.service import WEIGHTS, Signal, score_of
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def _records(session: Session, inbox: Inbox, **statuses: str) -> None:
    for purpose, status in statuses.items():
        session.add(
            DnsRecord(
                inbox_id=inbox.id,
                domain="acme.example",
                record_type="TXT",
                record_name=f"{purpose}.acme.example",
                record_value="v",
                purpose=purpose,
                verification_status=status,
            )
        )
    session.flush()


def _state(session: Session, server: VpsServer, check: str, status: str, detail: str = "") -> None:
    row = session.get(HealthCheckState, (server.id, check))
    if row is None:
        row = HealthCheckState(
            vps_id=server.id,
            check=check,
            tenant_id=server.tenant_id,
            data={},
            checked_at=T0,
            status_since=T0,
            status=status,
            detail=detail,
        )
        session.add(row)
    row.status, row.detail = status, detail
    session.flush()


def _inbox(session: Session) -> tuple[Inbox, VpsServer]:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    return create_inbox(
        session, ws, server=server, status="ready", email_address="a@acme.example"
    ), server


def test_weights_sum_to_one_and_the_score_fits_decimal_3_2() -> None:
    assert sum(WEIGHTS.values()) == Decimal("1.00")
    everything_bad = [Signal(n, 0.0, float(w), "") for n, w in WEIGHTS.items()]
    everything_good = [Signal(n, 1.0, float(w), "") for n, w in WEIGHTS.items()]
    assert score_of(everything_bad) == Decimal("0.00")
    assert score_of(everything_good) == Decimal("1.00")
    # signals without data are left out, not counted as good or bad
    assert score_of([Signal("dns_auth", 0.5, 0.35, ""), Signal("tls", None, 0.1, "")]) == (
        Decimal("0.50")
    )
    assert score_of([]) == Decimal("0.00")


def test_signals_and_history(session: Session) -> None:
    inbox, server = _inbox(session)
    _records(
        session,
        inbox,
        spf="verified",
        dkim="verified",
        dmarc="missing",
        ptr="verified",
        mx="missing",
    )
    for check in ("reachable", "mail_server", "disk", "queue", "tls", "dnsbl"):
        _state(session, server, check, "ok", "fine")
    assert reputation.recompute(session, [inbox], T0) == 1
    # dns 3/4 * .35 + .25 + .15 + .10 over .85 (no domain answer yet)
    assert inbox.reputation_score == Decimal("0.90")
    assert reputation.recompute(session, [inbox], T0 + timedelta(minutes=5)) == 0  # unchanged

    _state(session, server, "dnsbl", "critical", "listed on zen.test (127.0.0.2)")
    assert reputation.recompute(session, [inbox], T0 + timedelta(hours=1)) == 1
    assert inbox.reputation_score == Decimal("0.60")
    assert (
        session.scalar(
            select(func.count())
            .select_from(ReputationSnapshot)
            .where(ReputationSnapshot.inbox_id == inbox.id)
        )
        == 2
    )

    view = reputation.view(session, inbox.tenant_id, inbox.id, limit=1, offset=0)
    assert view["score"] == 0.6 and view["history"]["total"] == 2
    by_name = {s["name"]: s for s in view["signals"]}
    assert by_name["blocklist_ip"] == {
        "name": "blocklist_ip",
        "value": 0.0,
        "weight": 0.25,
        "reason": "listed on zen.test (127.0.0.2)",
    }
    assert by_name["dns_auth"]["reason"] == "not verified: dmarc"
    assert by_name["blocklist_domain"]["value"] is None
    assert [p["score"] for p in view["history"]["items"]] == [0.6]


def test_the_api_shows_score_signals_and_paginated_history(
    client: TestClient, session: Session
) -> None:
    inbox, _ = _inbox(session)
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    mine = create_inbox(session, ws, server=create_server(session, ws), status="ready")
    tenant_headers = tenant.headers
    r = client.get(f"/api/v1/inboxes/{mine.id}/reputation", headers=tenant_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["computed_at"] is None and body["history"]["total"] == 0
    assert [s["name"] for s in body["signals"]] == list(WEIGHTS)
    reputation.recompute(session, [mine], T0)
    body = client.get(
        f"/api/v1/inboxes/{mine.id}/reputation?limit=5", headers=tenant_headers
    ).json()
    assert body["history"]["total"] == 1 and body["history"]["limit"] == 5
    # another tenant's inbox is not found
    assert (
        client.get(f"/api/v1/inboxes/{inbox.id}/reputation", headers=tenant_headers).status_code
        == 404
    )
