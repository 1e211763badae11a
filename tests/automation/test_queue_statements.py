"""Round trips of one operation on the queue, counted with SQLAlchemy events: two transactions
(the claim, one statement that also loads the desired state, and the finish), no ping per
checkout on the workers' engine."""

import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from automation import queue
from automation.engine import Engine as StackEngine
from automation.engine import NoopEngine
from database.models.workspaces import Workspace
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
from tests.support.statements import Recorded, recording

# On the no-op engine (nothing reported, nothing to change): the claim with the desired state
# 1, and the record of a run that changed no row 1 (`queue._record_unchanged`), each its own
# transaction. The goal is 5 (README "Benchmarks").
MAX_NOOP_STATEMENTS = 2
# A run that reports the fleet (the full finish): the claim 1; the workspace lock (with whether
# anything is being deleted or has a DNS connection) 1, take-back 1, the servers and
# inboxes locked 2, the server's new address 1, DNS generation's reads 4 (inboxes, domains,
# inboxes with servers, records), the settle 1. A bound that catches a new per-row query.
MAX_ECHO_STATEMENTS = 11


def _one_operation(engines: Callable[[Workspace], StackEngine]) -> Recorded:
    with session_scope() as s:
        tenant = create_tenant(s)
        ws = create_workspace(s, tenant)
        create_mail_domain(s, ws, "example.com")
        server = create_server(s, ws, status="ready")
        create_inbox(s, ws, email_address="sales@example.com", server=server, status="ready")
        operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
    queue.run_one("warm", engines)  # nothing due: pools and caches warm
    queue._recover_last = time.monotonic()  # the once-a-second recovery pass is not per operation
    with session_scope() as s:
        s.execute(
            text("UPDATE operations SET status = 'queued', run_after = now() - interval '1 second'")
        )
    with recording() as recorded:
        assert queue.run_one("w1", engines) is True
    pings = [s for s in recorded.statements if s.strip().upper() == "SELECT 1"]
    assert pings == [], str(recorded)
    assert recorded.transactions == 2, str(recorded)
    with session_scope() as s:
        assert s.execute(text("SELECT status FROM operations")).scalar_one() == "succeeded"
    return recorded


def test_an_operation_on_the_noop_engine_is_two_statements(committed: Engine) -> None:
    recorded = _one_operation(lambda ws: NoopEngine())
    assert len(recorded.statements) <= MAX_NOOP_STATEMENTS, str(recorded)
    assert recorded.statements[0].lstrip().startswith("WITH claimed AS (")  # claim and load
    assert "SELECT" not in recorded.statements[1].split("WHERE")[0]  # no reload at finish


def test_a_run_reporting_the_fleet_stays_within_its_bound(committed: Engine) -> None:
    recorded = _one_operation(lambda ws: FleetEcho())
    assert len(recorded.statements) <= MAX_ECHO_STATEMENTS, str(recorded)
