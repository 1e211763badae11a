"""Round trips of the hot paths, counted with SQLAlchemy events (tests/support/statements.py):
an inbox create is 4 statements of its own once its workspace has the domain and a server with
room, plus the warmup's recomputation of the workspace's caps (issue 14), which sends a new
inbox's cap with the run that creates it; the kept per-server inbox count always equals what a
GROUP BY would say."""

import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from domain.inboxes import service as inboxes
from domain.inboxes.schemas import InboxCreate
from domain.operations import service as operations
from kit.errors import Conflict
from settings import get_settings
from tests.support.factories import (
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


# The create's own 4 (the workspace lock; owner, domain and a server with room in one read; the
# insert with ON CONFLICT as the duplicate check; the coalescing enqueue) and the warmup's 15
# (the workspace and its inboxes locked, policy, server and domain trouble, reputation with its
# one read of the workspace's external reputation figures) when no neighbour's cap changes.
# A neighbour whose domain share changes costs its own UPDATE and event: a known cost of issue
# 14's per-row write, to be made set-based (issue 16).
CREATE_STATEMENTS = 19


def test_an_inbox_create_is_a_bounded_number_of_statements(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "example.com")
    create_server(session, ws, region="eu-central")
    _create(session, tenant.tenant.id, ws.id, "first@example.com")  # the owner row, the queued up
    with recording() as recorded:
        accepted = _create(session, tenant.tenant.id, ws.id, "second@example.com")
    assert len(recorded.statements) <= CREATE_STATEMENTS, str(recorded)
    assert accepted.inbox.email_address == "second@example.com"
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
    operations.cancel(session, tenant.tenant.id, deleting.operation.id)
    session.flush()
    session.execute(
        text("UPDATE inboxes SET vps_id = :b WHERE vps_id = :a"), {"a": a.id, "b": b.id}
    )
    session.execute(text("DELETE FROM inboxes WHERE id = :i"), {"i": made[1].inbox.id})
    for s in (a.id, b.id):
        kept, counted = _kept_and_counted(session, s)
        assert kept == counted, s
    assert _kept_and_counted(session, a.id) == (0, 0)
