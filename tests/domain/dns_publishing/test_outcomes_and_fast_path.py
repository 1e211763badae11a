"""What a run's DNS outcomes do to the records, the desired state they come from, and the fast
path to ready: a published record is checked within seconds, then at 15 s, 1 min, 2 min and
5 min after its publication, then at the sweep's normal interval."""

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from automation.desired_state import build_fleet_config
from database.models.dns_records import DnsRecord
from database.models.mail_domains import MailDomain
from database.models.workspaces import Workspace
from domain.dns_publishing import service as publishing
from domain.dns_publishing.schemas import Rfc2136Create, WorkspaceDnsUpdate
from domain.dns_records import service as dns_records
from maildns.checks import RecordCheck, RecordStatus
from settings import get_settings
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

SECRET = "c2VjcmV0LXNlY3JldA=="


def published_workspace(session: Session) -> tuple[Workspace, list[DnsRecord]]:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "fast.example")
    server = create_server(session, ws, hostname="mail.fast.example")
    for local in ("a", "b"):  # two inboxes of one domain: one set of DNS resources
        create_inbox(session, ws, email_address=f"{local}@fast.example", server=server)
    dns_records.generate_for_server(session, server, settings=get_settings())
    connection = publishing.create_connection(
        session,
        tenant.tenant.id,
        ws.id,
        Rfc2136Create(
            name="k",
            kind="rfc2136",
            server="127.0.0.1:5300",
            tsig_key_name="k.",
            tsig_secret=SECRET,
        ),
    )
    publishing.set_default(
        session,
        tenant.tenant.id,
        ws.id,
        WorkspaceDnsUpdate(dns_connection_id=connection.id),
        settings=get_settings(),
    )
    rows = session.scalars(select(DnsRecord).where(DnsRecord.domain == "fast.example")).all()
    return ws, list(rows)


def test_desired_state_has_one_resource_per_distinct_value(session: Session) -> None:
    ws, rows = published_workspace(session)
    config = build_fleet_config(session, ws)
    assert len(rows) == 2 * len(config.dns_records)  # both inboxes' records, once each
    assert {r.purpose for r in config.dns_records} == {r.purpose for r in rows}
    (connection,) = config.dns_connections
    assert connection.credentials == {"tsig_secret": SECRET}
    assert SECRET not in repr(config)


def test_outcomes_land_on_every_matching_record_and_start_the_fast_path(session: Session) -> None:
    ws, rows = published_workspace(session)
    settings = get_settings()
    spf = next(r for r in rows if r.purpose == "spf")
    mx = next(r for r in rows if r.purpose == "mx")
    outcomes = [
        publishing.Outcome(
            "fast.example", "spf", spf.record_value, "published", "merged", "fast.example", None
        ),
        publishing.Outcome(
            "fast.example", "mx", mx.record_value, "conflict", "foreign MX", None, None
        ),
    ]
    written = publishing.record_outcomes(session, ws, outcomes, settings=settings)
    assert written.domains == ["fast.example"]
    assert [r["purpose"] for r in written.failed["fast.example"]] == ["mx"]
    for row in rows:
        session.refresh(row)
    spfs = [r for r in rows if r.purpose == "spf"]
    assert {r.publish_status for r in spfs} == {"published"}
    assert all(r.published_at is not None for r in spfs)
    assert {r.publish_status for r in rows if r.purpose == "mx"} == {"conflict"}
    assert {r.publish_status for r in rows if r.purpose not in ("spf", "mx")} == {"pending"}
    domain = session.scalars(select(MailDomain).where(MailDomain.name == "fast.example")).one()
    assert domain.zone == "fast.example"  # the zone the run found is kept

    # Checked within seconds of the publish...
    published_at = spfs[0].published_at
    assert published_at is not None
    first = settings.dns_publish_first_check_seconds
    assert all(r.next_check_at <= published_at + timedelta(seconds=first + 1) for r in spfs)

    # ...then at the backoff steps while it does not verify.
    missing = RecordCheck(RecordStatus.MISSING, "not there yet")
    expected = []
    for age, step_mark in ((2, 15), (20, 75), (80, 195), (200, 495)):
        now = published_at + timedelta(seconds=age)
        dns_records.apply_checks(
            session,
            [(spfs[0].id, spfs[0].record_value, "pending")],
            [missing],
            now,
            settings=settings,
        )
        session.refresh(spfs[0])
        expected.append(step_mark)
        assert spfs[0].next_check_at == published_at + timedelta(seconds=step_mark), age
    # Past the last step: the normal interval.
    late = published_at + timedelta(seconds=600)
    dns_records.apply_checks(
        session,
        [(spfs[0].id, spfs[0].record_value, "pending")],
        [missing],
        late,
        settings=settings,
    )
    session.refresh(spfs[0])
    assert spfs[0].next_check_at == late + timedelta(seconds=settings.dns_verify_interval_seconds)


def test_removing_the_connection_makes_records_manual(session: Session) -> None:
    ws, rows = published_workspace(session)
    assert {r.publish_status for r in rows} == {"pending"}
    publishing.set_default(
        session,
        ws.tenant_id,
        ws.id,
        WorkspaceDnsUpdate(dns_connection_id=None),
        settings=get_settings(),
    )
    for row in rows:
        session.refresh(row)
    assert {r.publish_status for r in rows} == {"manual"}
    assert build_fleet_config(session, ws).dns_records == ()


def test_a_run_that_could_not_publish_says_so_once_per_domain(session: Session) -> None:
    from database.models.events import Event
    from domain.operations import results
    from domain.operations import service as operations

    ws, rows = published_workspace(session)
    op = operations.enqueue(session, ws, "up", reason="test", settings=get_settings())
    mx = next(r for r in rows if r.purpose == "mx")
    run = results.RunOutputs(
        servers={},
        mailboxes={},
        dns={
            "dns-fast.example-mx-1": {
                "domain": "fast.example",
                "purpose": "mx",
                "value": mx.record_value,
                "status": "conflict",
                "detail": "fast.example already has MX 5 other.example.",
                "zone": "fast.example",
                "published_at": "",
            }
        },
    )
    for _ in range(2):  # the second run reports the same: no second event
        results.publish_dns(session, ws, op, run, get_settings())
    events = session.scalars(select(Event).where(Event.type == "dns.publish_failed")).all()
    assert len(events) == 1
    assert events[0].data["domain"] == "fast.example"
    assert events[0].data["records"][0]["status"] == "conflict"
    assert "other.example" in events[0].data["records"][0]["detail"]
