"""Operation worker threads (scheduler.workers.OperationWorkers) against real Postgres, with a
fake Pulumi engine: they claim a queued `up`, run it, and end when stopped."""

import threading
import time
import uuid

from sqlalchemy import Engine, select, text

from database.models.operations import Operation
from database.session import session_scope
from domain.operations import service as operations
from scheduler.workers import OperationWorkers
from settings import get_settings
from tests.support.engine_fakes import FleetEcho
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

WAIT_SECONDS = 60  # a bound on the wait, never an assertion on how long it took


def _queued_up() -> uuid.UUID:
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s))
        create_mail_domain(s, ws, "example.com")
        server = create_server(
            s, ws, ip_address=None, status="provisioning", mail_server_status="not_configured"
        )
        create_inbox(s, ws, email_address="sales@example.com", server=server)
        op = operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
        # Due now: the test does not wait out the coalescing window.
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        return op.id


def _status(op_id: uuid.UUID) -> tuple[str, object]:
    with session_scope() as s:
        op = s.scalars(select(Operation).where(Operation.id == op_id)).one()
        return op.status, op.error


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("operation-worker-")]


def test_workers_run_a_queued_operation_and_end_when_stopped(committed: Engine) -> None:
    op_id = _queued_up()
    engine = FleetEcho()
    workers = OperationWorkers(get_settings(), threads=2, engines=lambda ws: engine)
    assert _worker_threads() == []
    workers.start()
    try:
        threads = _worker_threads()
        assert len(threads) == 2
        deadline = time.monotonic() + WAIT_SECONDS
        status, error = _status(op_id)
        while status != "succeeded" and time.monotonic() < deadline:
            time.sleep(0.1)
            status, error = _status(op_id)
    finally:
        workers.stop()
    assert status == "succeeded", error
    assert [kind for kind, _, _ in engine.calls] == ["up"]  # run once, by one of the two
    assert not any(t.is_alive() for t in threads)
    assert _worker_threads() == []


def test_zero_threads_start_nothing() -> None:
    workers = OperationWorkers(get_settings(), threads=0, engines=lambda ws: FleetEcho())
    workers.start()
    workers.stop()
    assert _worker_threads() == []
