"""The operations queue against real Postgres: claiming, one run per stack, coalescing, leases,
retries and the provisioning pipeline's effect on the fleet's rows."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from automation import queue
from automation.engine import NoopEngine
from database.models.dns_connections import DnsConnection
from database.models.events import Event
from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.session import session_scope
from domain.operations import service as operations
from kit.time import utcnow
from settings import get_settings
from tests.support.engine_fakes import Failing, FleetEcho
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)


def _fleet(
    provisioning: bool = True, address: str = "sales@example.com"
) -> tuple[uuid.UUID, uuid.UUID]:
    with session_scope() as s:
        tenant = create_tenant(s)
        ws = create_workspace(s, tenant)
        create_mail_domain(s, ws, "example.com")
        server = create_server(
            s,
            ws,
            ip_address=None,
            status="provisioning" if provisioning else "ready",
            mail_server_status="not_configured",
        )
        create_inbox(s, ws, email_address=address, server=server)
        operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
        # Due now: tests don't wait out the coalescing window.
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        return ws.id, server.id


def _ops(session: Session, workspace_id: uuid.UUID) -> list[Operation]:
    return list(session.scalars(select(Operation).where(Operation.workspace_id == workspace_id)))


def test_ups_coalesce_into_one_queued_operation(session: Session) -> None:
    ws = create_workspace(session, create_tenant(session))
    first = operations.enqueue(session, ws, "up", settings=get_settings())
    for _ in range(9):
        assert operations.enqueue(session, ws, "up", settings=get_settings()).id == first.id
    preview = operations.enqueue(session, ws, "preview", settings=get_settings())
    assert preview.id != first.id
    assert len(_ops(session, ws.id)) == 2


def test_enqueue_keeps_working_once_the_statement_is_prepared(session: Session) -> None:
    # psycopg prepares a statement on its 5th run on a connection; the ON CONFLICT must still
    # find the partial unique index then.
    tenant = create_tenant(session)
    for _ in range(12):
        ws = create_workspace(session, tenant)
        first = operations.enqueue(session, ws, "up", settings=get_settings())
        assert operations.enqueue(session, ws, "up", settings=get_settings()).id == first.id


def test_postgres_refuses_two_running_operations_on_one_stack(session: Session) -> None:
    ws = create_workspace(session, create_tenant(session))
    a = operations.enqueue(session, ws, "up", settings=get_settings())
    b = operations.enqueue(session, ws, "preview", settings=get_settings())
    a.status = "running"
    session.flush()
    b.status = "running"
    with pytest.raises(IntegrityError):
        session.flush()


def test_claim_skips_stacks_with_a_running_operation(committed: Engine) -> None:
    ws_id, _ = _fleet()
    with session_scope() as s:
        ws = s.get_one(Workspace, ws_id)
        operations.enqueue(s, ws, "preview", settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
    with session_scope() as s:
        first = queue.claim(s, "w1")
        assert first is not None and first.status == "running" and first.attempts == 1
    with session_scope() as s:
        assert queue.claim(s, "w2") is None  # the preview waits for the up


def test_two_workers_never_claim_the_same_operation(committed: Engine) -> None:
    for i in range(2):
        _fleet(address=f"sales{i}@example.com")
    with session_scope() as a, session_scope() as b:
        first = queue.claim(a, "w1")
        second = queue.claim(b, "w2")  # SKIP LOCKED: w1's row is invisible to w2
        assert first is not None and second is not None
        assert first.id != second.id


def test_up_provisions_the_fleet_and_generates_dns(committed: Engine) -> None:
    ws_id, server_id = _fleet(address="Sales@example.com")
    engine = FleetEcho()
    assert queue.run_one("w1", lambda ws: engine) is True
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "succeeded", op.error
        assert op.resource_changes and op.resource_changes[0]["op"] == "create"
        steps = {step["step"]: step for step in (op.summary or {})["steps"]}
        assert list(steps) == [
            "create_server",
            "install_mail_server",
            "configure_tls",
            "remove_inboxes",
            "remove_servers",
            "record_servers",
            "attach_mailboxes",
            "generate_dns",
            "publish_dns",
        ]
        # Each step says what it really did: the fake creates a server and nothing else.
        assert steps["create_server"]["status"] == "changed"
        assert steps["install_mail_server"]["status"] == "unchanged"
        assert steps["remove_inboxes"] == {
            "step": "remove_inboxes",
            "status": "unchanged",
            "items": [],
        }
        assert steps["attach_mailboxes"]["items"] == ["Sales@example.com"]
        assert steps["generate_dns"]["status"] == "changed"
        server = s.get_one(VpsServer, server_id)
        assert server.status == "ready" and server.mail_server_status == "running"
        assert str(server.ip_address) == "198.51.100.10" and server.provider_server_id == "1000"
        inbox = s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).one()
        assert inbox.status == "dns_pending"
        assert inbox.smtp_config == {  # found though the stack lower-cases the address
            "host": server.hostname,
            "port": 465,
            "security": "tls",
            "username": "sales@example.com",
        }
        records = s.execute(
            text("SELECT count(*) FROM dns_records WHERE inbox_id = :i"), {"i": inbox.id}
        ).scalar_one()
        assert records >= 5
        kinds = {e.type for e in s.scalars(select(Event).where(Event.workspace_id == ws_id))}
        assert "server.ready" in kinds
    config = engine.calls[0][2]
    assert [m.address for m in config.mailboxes] == ["sales@example.com"]  # lower-cased
    assert queue.run_one("w1", lambda ws: engine) is False


def test_transient_failure_is_retried_with_backoff(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    assert queue.run_one("w1", lambda ws: Failing(transient=True)) is True
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "queued" and op.attempts == 1
        assert op.error == "provider said no"
        assert op.run_after > utcnow() + timedelta(seconds=1)
        assert s.get_one(VpsServer, server_id).status == "provisioning"


def test_permanent_failure_marks_rows_failed_and_retry_resumes(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    assert queue.run_one("w1", lambda ws: Failing(transient=False, message="bad token")) is True
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "failed" and op.attempts == 1
        server = s.get_one(VpsServer, server_id)
        assert server.status == "failed" and server.status_reason == "bad token"
        inbox = s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).one()
        assert inbox.status == "failed"
        failed_events = s.scalars(
            select(Event).where(Event.workspace_id == ws_id, Event.type == "operation.failed")
        ).all()
        assert len(failed_events) == 1 and "bad token" in failed_events[0].message
        retry = operations.retry(s, op.tenant_id, op.id, settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        assert retry.id != op.id
    assert queue.run_one("w1", lambda ws: FleetEcho()) is True
    with session_scope() as s:
        assert s.get_one(VpsServer, server_id).status == "ready"
        inbox = s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).one()
        assert inbox.status == "dns_pending"


def test_expired_lease_is_taken_over(committed: Engine) -> None:
    ws_id, _ = _fleet()
    with session_scope() as s:
        op = queue.claim(s, "crashed-worker")
        assert op is not None
        op.lease_expires_at = utcnow() - timedelta(seconds=1)
    assert queue.recover_expired().requeued == [op.id]
    assert queue.run_one("w2", lambda ws: FleetEcho()) is True
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "succeeded" and op.attempts == 2
        assert (op.summary or {})["worker"] == "w2"


def test_requeue_fails_an_operation_out_of_attempts(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    with session_scope() as s:
        op = queue.claim(s, "crashed-worker")
        assert op is not None
        op.max_attempts = 1
        op.lease_expires_at = utcnow() - timedelta(seconds=1)
    assert queue.recover_expired().failed == [op.id]
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "failed" and "lease" in (op.error or "")
        assert s.get_one(VpsServer, server_id).status == "failed"


def test_a_run_whose_lease_was_lost_does_not_write(committed: Engine) -> None:
    ws_id, server_id = _fleet()

    class Usurped(FleetEcho):
        def up(self, stack, config, on_event=None):  # type: ignore[no-untyped-def]
            with session_scope() as s:  # another worker took the operation over meanwhile
                s.execute(text("UPDATE operations SET lease_owner = 'w-other'"))
            return super().up(stack, config, on_event)

    queue.run_one("w1", lambda ws: Usurped())
    with session_scope() as s:
        assert _ops(s, ws_id)[0].status == "running"
        assert s.get_one(VpsServer, server_id).status == "provisioning"


def test_deleted_inbox_leaves_the_stack_then_the_table(committed: Engine) -> None:
    _, server_id = _fleet(provisioning=False)
    engine = FleetEcho()
    queue.run_one("w1", lambda ws: engine)
    with session_scope() as s:
        inbox = s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).one()
        from domain.inboxes import service as inboxes

        inboxes.mark_for_deletion(s, inbox.tenant_id, inbox.id, settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
    queue.run_one("w1", lambda ws: engine)
    assert engine.calls[-1][2].mailboxes == ()
    with session_scope() as s:
        assert s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).first() is None
        assert s.get_one(VpsServer, server_id).status == "ready"


def test_a_worker_cannot_start_an_up_that_an_open_request_has_joined(committed: Engine) -> None:
    ws_id, _ = _fleet()
    with session_scope() as request:
        joined = operations.enqueue(
            request, request.get_one(Workspace, ws_id), "up", settings=get_settings()
        )
        with session_scope() as worker:  # the request has not committed its change yet
            assert queue.claim(worker, "w1") is None
    with session_scope() as worker:
        claimed = queue.claim(worker, "w1")
        assert claimed is not None and claimed.id == joined.id


def test_a_change_after_the_queued_up_was_claimed_gets_its_own_up(committed: Engine) -> None:
    ws_id, _ = _fleet()
    with session_scope() as worker:
        claimed = queue.claim(worker, "w1")
        assert claimed is not None
    with session_scope() as request:
        later = operations.enqueue(
            request, request.get_one(Workspace, ws_id), "up", settings=get_settings()
        )
        assert later.id != claimed.id and later.status == "queued"


def _crash(worker: str = "crashed-worker") -> uuid.UUID:
    """Claim the due operation as a worker that then dies: its lease has run out."""
    with session_scope() as s:
        op = queue.claim(s, worker)
        assert op is not None
        op.lease_expires_at = utcnow() - timedelta(seconds=1)
        return op.id


def test_a_crashed_up_folds_into_the_workspaces_queued_up(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    crashed = _crash()
    with session_scope() as s:  # a change arrives while the crashed run still looks running
        queued = operations.enqueue(
            s, s.get_one(Workspace, ws_id), "up", reason="later change", settings=get_settings()
        )
        queued_id = queued.id
    report = queue.recover_expired()
    assert report.folded == [crashed] and report.errors == []
    with session_scope() as s:
        old, new = s.get_one(Operation, crashed), s.get_one(Operation, queued_id)
        assert old.status == "superseded" and old.finished_at is not None
        assert (old.summary or {})["superseded_by"] == str(queued_id)
        assert new.status == "queued" and new.attempts == old.attempts == 1
        assert new.run_after <= utcnow()
    assert queue.run_one("w2", lambda ws: FleetEcho()) is True
    with session_scope() as s:
        assert s.get_one(Operation, queued_id).status == "succeeded"
        assert s.get_one(VpsServer, server_id).status == "ready"


def test_one_unrecoverable_operation_does_not_stop_the_others(committed: Engine) -> None:
    """The seed's bug: one UPDATE for every expired operation, so one conflict stopped
    recovery everywhere. Here three workspaces crash; one of them already has a queued up
    (the case that conflicted), and all three are recovered in one pass."""
    crashed, queued = [], []
    for i in range(3):
        ws_id, _ = _fleet(address=f"user{i}@example{i}.com")
        crashed.append(_crash(f"crashed-{i}"))
        if i == 1:
            with session_scope() as s:
                queued.append(
                    operations.enqueue(
                        s, s.get_one(Workspace, ws_id), "up", settings=get_settings()
                    ).id
                )
    report = queue.recover_expired()
    assert sorted(report.requeued + report.folded) == sorted(crashed)
    assert len(report.folded) == 1 and report.errors == []
    with session_scope() as s:
        statuses = s.scalars(select(Operation.status).where(Operation.status == "running")).all()
        assert statuses == []
    assert queue.recover_expired().recovered == 0  # idempotent


def test_recovery_carries_attempts_so_a_poison_run_still_runs_out(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    with session_scope() as s:
        s.execute(text("UPDATE operations SET max_attempts = 2"))
    first = _crash()
    with session_scope() as s:  # a change arrives: the crashed run folds forward into it
        later = operations.enqueue(s, s.get_one(Workspace, ws_id), "up", settings=get_settings()).id
        s.execute(text("UPDATE operations SET max_attempts = 2, run_after = now()"))
    assert queue.recover_expired().folded == [first]
    with session_scope() as s:
        assert s.get_one(Operation, later).attempts == 1  # carried, not reset
    assert _crash() == later  # the same run kills its worker again: attempts 2 of 2
    assert queue.recover_expired().failed == [later]
    with session_scope() as s:
        assert s.get_one(Operation, later).status == "failed"
        assert s.get_one(VpsServer, server_id).status == "failed"


def test_an_inbox_created_during_a_run_is_not_advanced_by_it(committed: Engine) -> None:
    ws_id, server_id = _fleet(provisioning=False)

    class CreatesMeanwhile(FleetEcho):
        def up(self, stack, config, on_event=None):  # type: ignore[no-untyped-def]
            with session_scope() as s:  # a request adds an inbox while the run is in flight
                ws = s.get_one(Workspace, ws_id)
                create_inbox(
                    s, ws, email_address="late@example.com", server=s.get_one(VpsServer, server_id)
                )
                operations.enqueue(s, ws, "up", settings=get_settings())
            return super().up(stack, config, on_event)

    queue.run_one("w1", lambda ws: CreatesMeanwhile())
    with session_scope() as s:
        rows = s.execute(
            select(Inbox.email_address, Inbox.status).where(Inbox.workspace_id == ws_id)
        ).all()
        states = {address: status for address, status in rows}
        assert states == {"sales@example.com": "dns_pending", "late@example.com": "pending_setup"}
        s.execute(text("UPDATE operations SET run_after = now() WHERE status = 'queued'"))
    queue.run_one("w1", lambda ws: FleetEcho())
    with session_scope() as s:
        late = s.scalars(select(Inbox).where(Inbox.email_address == "late@example.com")).one()
        assert late.status == "dns_pending" and late.smtp_config is not None


def test_cancelling_a_queued_up_settles_what_it_carried(committed: Engine) -> None:
    ws_id, server_id = _fleet()
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        operations.cancel(s, op.tenant_id, op.id)
        op_id, tenant_id = op.id, op.tenant_id
    with session_scope() as s:
        assert s.get_one(Operation, op_id).status == "cancelled"
        server = s.get_one(VpsServer, server_id)
        assert server.status == "failed" and "cancelled" in (server.status_reason or "")
        inbox = s.scalars(select(Inbox).where(Inbox.vps_id == server_id)).one()
        assert inbox.status == "failed"  # not pending_setup forever
        retry = operations.retry(s, tenant_id, op_id, settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() WHERE status = 'queued'"))
        assert retry.status == "queued"
    assert queue.run_one("w1", lambda ws: FleetEcho()) is True
    with session_scope() as s:
        assert s.get_one(VpsServer, server_id).status == "ready"
        assert s.scalars(select(Inbox.status).where(Inbox.vps_id == server_id)).one() == (
            "dns_pending"
        )


def test_a_finish_that_fails_is_retried_while_the_lease_is_held(committed: Engine) -> None:
    """The finish transaction fails once with a deadlock (raised by a trigger on the server
    rows it writes; a sequence counts, since it is not rolled back with the transaction); the
    worker retries it and the operation does not stay `running`."""
    ws_id, server_id = _fleet()
    with session_scope() as s:
        s.execute(
            text(
                """
                CREATE SEQUENCE finish_faults;
                CREATE FUNCTION fail_once() RETURNS trigger AS $$
                BEGIN
                  IF nextval('finish_faults') = 1 THEN
                    RAISE EXCEPTION 'injected' USING ERRCODE = '40P01';
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER fail_once BEFORE UPDATE ON vps_servers
                  FOR EACH ROW EXECUTE FUNCTION fail_once();
                """
            )
        )
    try:
        assert queue.run_one("w1", lambda ws: FleetEcho()) is True
        with session_scope() as s:
            assert _ops(s, ws_id)[0].status == "succeeded"
            assert s.get_one(VpsServer, server_id).status == "ready"
            # The fault fired once; the retried transaction passed it.
            assert s.scalar(text("SELECT last_value FROM finish_faults")) >= 2
    finally:
        with session_scope() as s:
            s.execute(
                text(
                    "DROP TRIGGER fail_once ON vps_servers; DROP FUNCTION fail_once(); "
                    "DROP SEQUENCE finish_faults"
                )
            )


def test_a_failed_workspace_is_destroyed_then_deletable(committed: Engine) -> None:
    from domain.workspaces import service as workspaces_service

    ws_id, server_id = _fleet()
    assert queue.run_one("w1", lambda ws: Failing(transient=False, message="no token")) is True
    with session_scope() as s:
        server = s.get_one(VpsServer, server_id)
        assert server.status == "failed"
        ws = s.get_one(Workspace, ws_id)
        operations.enqueue(s, ws, "destroy", reason="test", settings=get_settings())
    engine = FleetEcho()
    assert queue.run_one("w1", lambda ws: engine) is True
    assert len(engine.calls) == 1  # FleetEcho answers destroy like up
    with session_scope() as s:
        destroy = next(o for o in _ops(s, ws_id) if o.kind == "destroy")
        assert destroy.status == "succeeded"
        steps = {st["step"]: st for st in (destroy.summary or {})["steps"]}
        assert steps["remove_servers"]["status"] == "changed"
        assert s.get(VpsServer, server_id) is None  # no row left behind, whatever its status
        assert not s.scalars(select(Inbox).where(Inbox.workspace_id == ws_id)).all()
        ws = s.get_one(Workspace, ws_id)
        workspaces_service.delete(s, ws.tenant_id, ws_id)  # nothing left: the delete succeeds
    with session_scope() as s:
        assert s.get(Workspace, ws_id) is None


def test_a_run_reporting_no_servers_still_removes_rows_marked_for_deletion(
    committed: Engine,
) -> None:
    # The finish skips the fleet's rows only when nothing is marked for deletion
    # (results.FleetHints): here a server and its inbox are, and the run reports neither.
    ws_id, server_id = _fleet(provisioning=False)
    with session_scope() as s:
        s.execute(text("UPDATE inboxes SET status = 'deleting'"))
        s.execute(text("UPDATE vps_servers SET status = 'deleting'"))
    assert queue.run_one("w1", lambda ws: NoopEngine()) is True
    with session_scope() as s:
        assert _ops(s, ws_id)[0].status == "succeeded"
        assert s.get(VpsServer, server_id) is None
        assert s.scalars(select(Inbox).where(Inbox.workspace_id == ws_id)).first() is None
        kinds = {e.type for e in s.scalars(select(Event).where(Event.workspace_id == ws_id))}
        assert {"inbox.deleted", "server.deleted"} <= kinds


def test_a_run_reporting_no_servers_leaves_the_fleets_rows_alone(committed: Engine) -> None:
    ws_id, server_id = _fleet(provisioning=False)
    assert queue.run_one("w1", lambda ws: NoopEngine()) is True
    with session_scope() as s:
        op = _ops(s, ws_id)[0]
        assert op.status == "succeeded" and op.lease_owner is None
        steps = {step["step"]: step["status"] for step in (op.summary or {})["steps"]}
        assert set(steps.values()) == {"unchanged"}
        assert s.get_one(VpsServer, server_id).status == "ready"


def test_a_run_that_changes_nothing_is_recorded_like_the_full_finish(committed: Engine) -> None:
    # The one-statement record of an unchanged run (queue._record_unchanged) and the full
    # finish (a DNS connection makes the workspace take it) write the same operation.
    recorded = {}
    for connected in (False, True):
        ws_id, _ = _fleet(provisioning=False, address=f"sales{int(connected)}@example.com")
        with session_scope() as s:
            ws = s.get_one(Workspace, ws_id)
            stack_name = ws.stack_name
            if connected:
                manual = DnsConnection(tenant_id=ws.tenant_id, workspace_id=ws.id, name="manual")
                manual.kind, manual.settings, manual.credentials_encrypted = "manual", {}, "{}"
                s.add(manual)
        assert queue.run_one("w1", lambda ws: NoopEngine()) is True
        with session_scope() as s:
            op = _ops(s, ws_id)[0]
            assert op.status == "succeeded" and op.lease_owner is None and op.error is None
            assert op.finished_at is not None and op.log == f"noop engine: {stack_name}"
            recorded[connected] = (op.resource_changes, op.summary)
    assert recorded[False] == recorded[True]


def test_the_lease_keeper_extends_held_leases_and_flags_lost_ones(committed: Engine) -> None:
    _fleet(address="kept@example.com")
    _fleet(address="lost@example.com")
    with session_scope() as s:
        kept, lost = queue.claim(s, "w1"), queue.claim(s, "w2")
        assert kept is not None and lost is not None
        s.execute(text("UPDATE operations SET lease_expires_at = now() + interval '1 second'"))
    with session_scope() as s:
        taken = text("UPDATE operations SET lease_owner = 'w-other' WHERE id = :i")
        s.execute(taken, {"i": lost.id})
    keeper = queue._LeaseKeeper()
    held = [keeper.hold(kept.id, "w1"), keeper.hold(lost.id, "w2")]
    keeper.beat()
    assert [lease.lost for lease in held] == [False, True]
    with session_scope() as s:
        expires = s.get_one(Operation, kept.id).lease_expires_at
        assert expires is not None
        assert expires > utcnow() + timedelta(seconds=get_settings().lease_seconds - 5)
    for lease in held:
        keeper.release(lease)
    keeper.beat()  # holds none: no statement, nothing flagged
