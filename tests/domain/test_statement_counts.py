"""Round trips of the hot paths, counted with SQLAlchemy events (tests/support/statements.py):
an inbox create is 3 statements once its workspace has the domain and a server with room, its
cap, its neighbours' shares and its queued `up` included (issue 16: in the insert itself,
domain.warmup.admission); the kept per-server inbox count always equals what a GROUP BY would
say."""

import threading
import time
import uuid

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from domain.inboxes import service as inboxes
from domain.inboxes.schemas import InboxCreate
from domain.operations import service as operations
from kit.errors import Conflict, NotFound
from settings import get_settings
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)
from tests.support.statements import recording


def _create(
    session: Session, tenant_id: uuid.UUID, ws_id: uuid.UUID, address: str
) -> inboxes.Accepted:
    return inboxes.create(
        session,
        tenant_id,
        ws_id,
        InboxCreate(email_address=address, vps_provider="hetzner", vps_size="starter"),
        settings=get_settings(),
    )


def _kept_and_counted(session: Session, server_id: uuid.UUID) -> tuple[int, int]:
    session.expire_all()
    kept = session.scalar(select(VpsServer.inbox_count).where(VpsServer.id == server_id))
    counted = session.scalar(
        select(func.count())
        .select_from(Inbox)
        .where(Inbox.vps_id == server_id, Inbox.status != "deleting")
    )
    return int(kept or 0), int(counted or 0)


# The workspace lock; owner, domain and a server with room in one read; the insert with ON
# CONFLICT as the duplicate check, which also sets the new inbox's cap and hold and lowers its
# neighbours' shares with their events and queues or joins the workspace's `up` (CTEs of the
# same statement).
CREATE_STATEMENTS = 3


def test_an_inbox_create_is_a_bounded_number_of_statements(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "example.com")
    create_server(session, ws, region="eu-central")
    for n in range(3):  # the owner row, the queued up, three neighbours at 50 a day
        _create(session, tenant.tenant.id, ws.id, f"u{n}@example.com")
    with recording() as recorded:
        accepted = _create(session, tenant.tenant.id, ws.id, "second@example.com")
    assert len(recorded.statements) <= CREATE_STATEMENTS, str(recorded)
    assert accepted.inbox.email_address == "second@example.com"
    # the domain's 150 a day now shared by four: every neighbour lowered in those statements
    session.expire_all()
    caps = session.scalars(select(Inbox.effective_daily_limit).where(Inbox.workspace_id == ws.id))
    assert sorted(caps) == [37, 37, 37, 37]
    assert accepted.credentials is not None and accepted.credentials.smtp.host


def test_a_duplicate_address_is_refused_by_the_unique_index_in_any_case(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "example.com")
    server = create_server(session, ws)
    _create(session, tenant.tenant.id, ws.id, "Sales@example.com")
    with pytest.raises(Conflict):
        _create(session, tenant.tenant.id, ws.id, "sales@EXAMPLE.com")
    assert _kept_and_counted(session, server.id) == (1, 1)


def test_the_kept_inbox_count_follows_creates_deletes_moves_and_cancels(session: Session) -> None:
    settings = get_settings()
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "example.com")
    a = create_server(session, ws)
    b = create_server(session, ws)
    made = [_create(session, tenant.tenant.id, ws.id, f"u{i}@example.com") for i in range(3)]
    placed = {m.inbox.vps_id for m in made}
    assert placed <= {a.id, b.id}
    total = sum(_kept_and_counted(session, s)[0] for s in (a.id, b.id))
    assert total == 3
    deleting = inboxes.mark_for_deletion(
        session, tenant.tenant.id, made[0].inbox.id, settings=settings
    )
    session.flush()
    for s in (a.id, b.id):
        kept, counted = _kept_and_counted(session, s)
        assert kept == counted
    # Cancelling the up puts the deleting inbox back: it counts again.
    operations.cancel(session, tenant.tenant.id, deleting.operation_id)
    session.flush()
    session.execute(
        text("UPDATE inboxes SET vps_id = :b WHERE vps_id = :a"), {"a": a.id, "b": b.id}
    )
    session.execute(text("DELETE FROM inboxes WHERE id = :i"), {"i": made[1].inbox.id})
    for s in (a.id, b.id):
        kept, counted = _kept_and_counted(session, s)
        assert kept == counted, s
    assert _kept_and_counted(session, a.id) == (0, 0)


def test_an_inbox_list_is_one_statement_with_its_workspace_check_and_total(
    session: Session,
) -> None:
    tenant = create_tenant(session)
    other = create_tenant(session)
    ws = create_workspace(session, tenant)
    foreign = create_workspace(session, other)
    made = [create_inbox(session, ws, email_address=f"u{n}@example.com") for n in range(5)]
    create_inbox(session, foreign, email_address="theirs@example.com")
    session.flush()
    with recording() as recorded:
        rows, total = inboxes.list_page(session, tenant.tenant.id, ws.id, limit=2, offset=1)
    assert len(recorded.statements) == 1, str(recorded)
    assert total == 5
    ordered = sorted(made, key=lambda i: (i.created_at, i.id))
    assert [r.id for r in rows] == [i.id for i in ordered[1:3]]
    # past the end: still the total, an empty page
    rows, total = inboxes.list_page(session, tenant.tenant.id, ws.id, limit=2, offset=10)
    assert (list(rows), total) == ([], 5)
    # another tenant's workspace, or none at all: the same NotFound as `workspaces.get`
    for missing in (foreign.id, uuid.uuid4()):
        with pytest.raises(NotFound) as caught:
            inboxes.list_page(session, tenant.tenant.id, missing, limit=50, offset=0)
        assert str(caught.value) == f"workspace {missing} not found"
        assert caught.value.field == "workspace_id"


def test_a_create_joins_the_queued_up_and_refuses_a_duplicate_without_queueing(
    session: Session,
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "example.com")
    create_server(session, ws)
    first = _create(session, tenant.tenant.id, ws.id, "a@example.com")
    second = _create(session, tenant.tenant.id, ws.id, "b@example.com")
    assert second.operation_id == first.operation_id
    joins = session.execute(
        text("SELECT joins, status FROM operations WHERE id = :i"), {"i": first.operation_id}
    ).one()
    assert tuple(joins) == (1, "queued")
    # A duplicate neither joins the queued up nor queues one (even if its caller kept the
    # transaction): the statement's guard, not only the rollback.
    with session.begin_nested(), pytest.raises(Conflict):
        _create(session, tenant.tenant.id, ws.id, "A@example.com")
    ops = session.execute(
        text("SELECT count(*), max(joins) FROM operations WHERE workspace_id = :w"), {"w": ws.id}
    ).one()
    assert tuple(ops) == (1, 1)


def test_a_create_racing_a_claim_of_the_queued_up_queues_another(committed: Engine) -> None:
    """A worker claims the queued up while the create's statement waits on it: the create's
    change is not left to that run (its desired state predates the change) but to a new queued
    up. (Here the statement's insert, once the claim commits, no longer conflicts; a claim
    that lands between the insert's check and the join leaves both empty, and the create
    queues one with `operations.enqueue`.)"""
    with Session(committed) as s:
        tenant = create_tenant(s)
        ws = create_workspace(s, tenant)
        create_mail_domain(s, ws, "example.com")
        create_server(s, ws)
        first = _create(s, tenant.tenant.id, ws.id, "a@example.com")
        s.commit()
        tenant_id, ws_id, queued = tenant.tenant.id, ws.id, first.operation_id
    claimer = committed.connect()
    claim = claimer.begin()
    claimer.execute(text("UPDATE operations SET status = 'running' WHERE id = :i"), {"i": queued})
    result: dict[str, object] = {}

    def create() -> None:
        with Session(committed) as s:
            result["accepted"] = _create(s, tenant_id, ws_id, "b@example.com")
            s.commit()

    racer = threading.Thread(target=create)
    racer.start()
    try:
        with committed.connect() as watch:  # the create's statement waits on the claimed row
            for _ in range(200):
                waiting = watch.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
                if waiting:
                    break
                time.sleep(0.02)
        assert waiting, "the create never waited on the claimed row"
        claim.commit()
    finally:
        claimer.close()  # rolls back an uncommitted claim, so the create never hangs
        racer.join(10)
    accepted = result["accepted"]
    assert isinstance(accepted, inboxes.Accepted)
    assert accepted.operation_id != queued
    with committed.connect() as c:
        status = c.execute(
            text("SELECT status FROM operations WHERE id = :i"), {"i": accepted.operation_id}
        ).scalar_one()
    assert status == "queued"
