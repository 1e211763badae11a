"""Round trips of one operation on the queue, counted with SQLAlchemy events: two transactions
(the claim, which loads the desired state, and the finish), no ping per checkout on the
workers' engine."""

import time

from sqlalchemy import Engine, text

from automation import queue
from database.session import session_scope
from domain.operations import service as operations
from settings import get_settings
from tests.support.engine_fakes import FleetEcho
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)
from tests.support.statements import recording

# Measured: claim 1 + load 6 (workspace, servers, domains, inboxes, and DNS publishing's
# connections and workspace default); finish: take-back 1, the results pipeline 9 (servers,
# inboxes, the address update, domains, DNS records, and DNS publishing's two reconcile reads),
# settle 1. A bound that catches a new per-row query; the goal is 5 (README "Benchmarks").
MAX_STATEMENTS = 18


def test_one_operation_is_two_transactions_without_pings(committed: Engine) -> None:
    with session_scope() as s:
        tenant = create_tenant(s)
        ws = create_workspace(s, tenant)
        create_mail_domain(s, ws, "example.com")
        server = create_server(s, ws, status="ready")
        create_inbox(s, ws, email_address="sales@example.com", server=server, status="ready")
        operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
    queue.run_one("warm", lambda ws: FleetEcho())  # nothing due: pools and caches warm
    queue._recover_last = time.monotonic()  # the once-a-second recovery pass is not per operation
    with session_scope() as s:
        s.execute(
            text("UPDATE operations SET status = 'queued', run_after = now() - interval '1 second'")
        )
    with recording() as recorded:
        assert queue.run_one("w1", lambda ws: FleetEcho()) is True
    pings = [s for s in recorded.statements if s.strip().upper() == "SELECT 1"]
    assert pings == [], str(recorded)
    assert recorded.transactions == 2, str(recorded)
    assert len(recorded.statements) <= MAX_STATEMENTS, str(recorded)
    with session_scope() as s:
        assert s.execute(text("SELECT status FROM operations")).scalar_one() == "succeeded"
