"""The overview's counts: by status, domains verified only when every required record is,
open alerts, operations running or failed; another tenant's rows never counted."""

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.health import HealthCheckState
from domain.overview import service
from tests.support import factories


def _record(
    session: Session,
    inbox_id: object,
    domain: str,
    status: str,
    required: bool = True,
    publish: str = "manual",
) -> None:
    session.add(
        DnsRecord(
            inbox_id=inbox_id,
            domain=domain,
            record_type="TXT",
            record_name=f"r{status}{required}",
            record_value="v",
            verification_status=status,
            purpose=f"p{status}{required}",
            required=required,
            publish_status=publish,
        )
    )


def test_counts_per_workspace(session: Session) -> None:
    tenant = factories.create_tenant(session)
    ws = factories.create_workspace(session, tenant.tenant)
    server = factories.create_server(session, ws)
    factories.create_server(session, ws, status="unreachable")
    good = factories.create_inbox(
        session, ws, server=server, email_address="a@good.example", status="ready"
    )
    bad = factories.create_inbox(session, ws, server=server, email_address="b@bad.example")
    factories.create_mail_domain(session, ws, "good.example")
    factories.create_mail_domain(session, ws, "bad.example")
    _record(session, good.id, "good.example", "verified")
    _record(session, good.id, "good.example", "missing", required=False)
    _record(session, bad.id, "bad.example", "verified")
    _record(session, bad.id, "bad.example", "mismatch", publish="conflict")
    _record(session, bad.id, "bad.example", "pending", publish="published")
    now = datetime.now(UTC)
    session.add(
        HealthCheckState(
            vps_id=server.id,
            check="tls",
            tenant_id=ws.tenant_id,
            status="critical",
            detail="expired",
            checked_at=now,
            status_since=now,
        )
    )
    other = factories.create_tenant(session)
    theirs = factories.create_workspace(session, other.tenant)
    factories.create_server(session, theirs)
    session.flush()

    counts = service.workspace_counts(session, tenant.tenant.id, [ws.id, theirs.id])
    mine = counts[ws.id]
    assert mine.servers == {"ready": 1, "unreachable": 1}
    assert mine.inboxes == {"ready": 1, "pending_setup": 1}
    assert (mine.domains, mine.domains_verified) == (2, 1)
    assert mine.open_alerts == 1
    assert counts[theirs.id].servers == {}, "another tenant's workspace counts nothing"

    states = {d.name: d for d in service.domains(session, tenant.tenant.id, ws.id)}
    assert states["good.example"].verification == "verified"
    assert (states["bad.example"].verified, states["bad.example"].required) == (1, 3)
    assert states["bad.example"].publish == "conflict", "the worst of its records"
    assert states["bad.example"].first_inbox_id == bad.id
    assert states["good.example"].publish == "manual", "no DNS connection: published by hand"
