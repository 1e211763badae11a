"""The optional reputation connectors against loopback fakes in the providers' documented
shapes (the Postmaster client itself: test_postmaster.py): SNDS good data, an auth error, a
malformed reply (the figure is unknown, never clean); the fetch step and the job (one failing
workspace skipped and reported); the score moving with a high spam rate / an SNDS red; and the
service-account credential (a signed assertion exchanged for a cached token)."""

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.reputation_connectors import ReputationConnector, ReputationFigure
from database.models.workspaces import Workspace
from database.session import session_scope
from domain.reputation import clients, connectors
from domain.reputation import service as reputation
from domain.reputation.schemas import ConnectorPut
from scheduler.jobs import reputation_fetch
from settings import get_settings
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings
from tests.support.reputation_fakes import (
    FakeGoogleToken,
    FakePostmaster,
    FakeSnds,
    PostmasterDomain,
    SndsRow,
    make_service_account,
    serving_fake,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

TOKEN = "ya29.test-access-token"
KEY = "snds-automated-access-key"


def _postmaster(spam_rate: float = 0.0005, token: str = TOKEN) -> FakePostmaster:
    return FakePostmaster(
        token,
        {
            "acme.example": PostmasterDomain(
                spam_rate,
                0.98,
                {"SPF": "COMPLIANT", "DKIM": "COMPLIANT", "ONE_CLICK_UNSUBSCRIBE": "NEEDS_WORK"},
            ),
            "other.example": PostmasterDomain(0.5, 0.1),
        },
    )


def test_snds_good_data_auth_error_and_malformed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rows = [SndsRow("192.0.2.10", "RED", "0.4%", 3), SndsRow("198.51.100.1", "GREEN")]
    with serving_fake(FakeSnds(KEY, rows)) as url:
        got = clients.snds(clients.Endpoint(url, 5), KEY, ["192.0.2.10"])
        with pytest.raises(clients.ConnectorError) as err:
            clients.snds(clients.Endpoint(url, 5), "bad-key", ["192.0.2.10"])
    assert got == {
        "192.0.2.10": {
            "filter_result": "RED",
            "complaint_rate": 0.004,
            "trap_hits": 3,
            "activity_end": "12/1/2026 4:00 AM",
        }
    }
    assert "401" in str(err.value) and "bad-key" not in str(err.value)
    assert "data.aspx" in caplog.text and KEY not in caplog.text  # httpx's request log
    with serving_fake(FakeSnds(KEY, rows, malformed=True)) as url:
        bad = clients.snds(clients.Endpoint(url, 5), KEY, ["192.0.2.10"])
    figures = bad["192.0.2.10"]
    assert (figures["filter_result"], figures["complaint_rate"], figures["trap_hits"]) == (
        None,
        None,
        None,
    )
    assert reputation.external_signals(None, figures) == []


def _inbox_with_connectors(session: Session) -> tuple[Workspace, Inbox]:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws, ip_address="192.0.2.10")
    inbox = create_inbox(session, ws, server=server, status="ready", email_address="a@acme.example")
    connectors.put(session, tenant.id, ws.id, "google_postmaster", ConnectorPut(access_token=TOKEN))
    connectors.put(session, tenant.id, ws.id, "microsoft_snds", ConnectorPut(key=KEY))
    return ws, inbox


def _fetch_all(session: Session) -> None:
    ids = session.scalars(select(ReputationConnector.id).order_by(ReputationConnector.id))
    for connector_id in list(ids):
        due = connectors.prepare(session, connector_id)
        assert due is not None
        connectors.store(session, due, connectors.fetch(due, get_settings(), T0), "", T0)


def test_score_drops_with_a_high_postmaster_spam_rate(
    session: Session, override_settings: OverrideSettings
) -> None:
    _, inbox = _inbox_with_connectors(session)
    before = reputation.score_of(reputation._inputs(session, [inbox], T0)[inbox.id])
    results = {}
    for spam in (0.0005, 0.004):
        with serving_fake(_postmaster(spam)) as pm, serving_fake(FakeSnds(KEY)) as snds:
            override_settings(postmaster_base_url=pm, snds_base_url=snds)
            _fetch_all(session)
        signals = reputation._inputs(session, [inbox], T0)[inbox.id]
        spam_signal = next(s for s in signals if s.name == "postmaster_spam_rate")
        results[spam] = (spam_signal.value, reputation.score_of(signals))
    assert results[0.0005][0] == 1.0 and results[0.004][0] == 0.0
    assert results[0.004][1] < results[0.0005][1]
    assert before != results[0.004][1]
    reputation.recompute(session, [inbox], T0)
    assert inbox.reputation_score == results[0.004][1]


def test_score_drops_with_an_snds_red_filter_result(
    session: Session, override_settings: OverrideSettings
) -> None:
    _, inbox = _inbox_with_connectors(session)
    scores = {}
    for colour in ("GREEN", "RED"):
        fake = FakeSnds(KEY, [SndsRow("192.0.2.10", colour)])
        with serving_fake(FakePostmaster(TOKEN)) as pm, serving_fake(fake) as snds:
            override_settings(postmaster_base_url=pm, snds_base_url=snds)
            _fetch_all(session)
        signals = reputation._inputs(session, [inbox], T0)[inbox.id]
        assert next(s for s in signals if s.name == "snds_filter").reason.endswith(colour)
        scores[colour] = reputation.score_of(signals)
    assert scores["RED"] < scores["GREEN"]


def test_job_skips_and_reports_a_failing_workspace(
    committed: None, override_settings: OverrideSettings
) -> None:
    with session_scope() as session:
        good_ws, _ = _inbox_with_connectors(session)
        tenant = create_tenant(session)
        bad_ws = create_workspace(session, tenant)
        create_server(session, bad_ws, ip_address="192.0.2.10")
        connectors.put(session, tenant.id, bad_ws.id, "microsoft_snds", ConnectorPut(key="stale"))
        good_id, bad_id = good_ws.id, bad_ws.id
    rows = [SndsRow("192.0.2.10", "YELLOW")]
    with serving_fake(_postmaster()) as pm, serving_fake(FakeSnds(KEY, rows)) as snds:
        override_settings(postmaster_base_url=pm, snds_base_url=snds)
        report = reputation_fetch.run(get_settings(), T0)
    assert report.failed_workspaces == [bad_id]
    assert report.connectors == 2 and report.subjects == 2
    assert "stale" not in repr(report)
    with session_scope() as session:
        figures = session.scalars(select(ReputationFigure)).all()
        assert {(f.workspace_id, f.kind) for f in figures} == {
            (good_id, "google_postmaster"),
            (good_id, "microsoft_snds"),
        }
        bad = session.scalars(
            select(ReputationConnector).where(ReputationConnector.workspace_id == bad_id)
        ).one()
        assert "401" in bad.last_error and bad.last_fetched_at is None


def test_a_service_account_connector_fetches_with_an_exchanged_token(
    session: Session, override_settings: OverrideSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    info, public = make_service_account()
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_inbox(session, ws, status="ready", email_address="a@acme.example")
    row, _ = connectors.put(
        session, tenant.id, ws.id, "google_postmaster", ConnectorPut(service_account=info)
    )
    assert connectors.view(session, row).credentials == ["service_account"]
    token = FakeGoogleToken(public, info["client_email"])
    with serving_fake(token) as auth, serving_fake(_postmaster(token=token.issued)) as pm:
        override_settings(postmaster_base_url=pm, google_token_url=f"{auth}/token")
        _fetch_all(session)
        _fetch_all(session)  # the token is cached: one exchange for both
    assert len(token.exchanges) == 1
    figures = session.scalars(select(ReputationFigure)).one()
    assert figures.subject == "acme.example" and figures.figures["spam_rate"] == 0.0005
    assert info["private_key"].splitlines()[1] not in caplog.text
