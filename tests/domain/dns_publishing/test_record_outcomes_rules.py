"""record_outcomes' finer rules: a failure is reported when the record becomes it, not again;
a manual record is left alone; a PTR's zone is not the domain's; a verified record keeps its
publication date and schedule."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.mail_domains import MailDomain
from domain.dns_publishing import service as publishing
from settings import get_settings
from tests.domain.dns_publishing.test_outcomes_and_fast_path import published_workspace


def test_failure_reported_once_manual_skipped_ptr_zone_ignored_verified_kept(
    session: Session,
) -> None:
    ws, rows = published_workspace(session)
    settings = get_settings()
    mx = next(r for r in rows if r.purpose == "mx")
    spf = [r for r in rows if r.purpose == "spf"]
    spf[0].publish_status = "manual"
    spf[1].verification_status = "verified"
    spf[1].published_at = datetime(2020, 1, 1, tzinfo=UTC)
    later = datetime(2099, 1, 1, tzinfo=UTC)
    spf[1].next_check_at = later
    session.flush()
    ptr_value = next(r.record_value for r in rows if r.purpose == "ptr")
    outcomes = [
        publishing.Outcome("fast.example", "mx", mx.record_value, "error", "x" * 2000, None, None),
        publishing.Outcome(
            "fast.example", "spf", spf[0].record_value, "published", "ok", None, None
        ),
        publishing.Outcome(
            "fast.example", "ptr", ptr_value, "published", "ok", "in-addr.arpa", None
        ),
    ]
    first = publishing.record_outcomes(session, ws, outcomes, settings=settings)
    assert first.failed == {
        "fast.example": [{"purpose": "mx", "status": "error", "detail": "x" * 1000}]
    }
    assert mx.publish_detail == "x" * 2000
    assert spf[0].publish_status == "manual" and spf[0].publish_detail != "ok"
    assert spf[1].publish_status == "published"
    assert spf[1].published_at == datetime(2020, 1, 1, tzinfo=UTC)
    assert spf[1].next_check_at == later  # not pulled forward
    domain = session.scalars(select(MailDomain).where(MailDomain.name == "fast.example")).one()
    assert domain.zone is None  # only a PTR named a zone

    again = publishing.record_outcomes(session, ws, outcomes, settings=settings)
    assert again.domains == ["fast.example"]
    assert again.failed == {}
    assert publishing.record_outcomes(session, ws, [], settings=settings) == publishing.Written(
        [], {}
    )
