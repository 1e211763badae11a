"""A worker's claim racing a change that joins the queued `up` (the e2e fleet test once left
inboxes pending forever this way). The claim loads the desired state in its own statement,
under that statement's snapshot; a change that joins the queued `up` holds the operation's row
locked until it commits, and may commit after the claim's snapshot was taken but before the
claim reaches the row. The claim must then load the fleet again, or the run applies a fleet
without the change and nothing ever queues another run for it."""

import threading
import time
import uuid

from sqlalchemy import Engine, text

from automation import queue
from automation.engine import NoopEngine
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.session import session_scope
from domain.operations import service as operations
from domain.workspaces import service as workspaces
from settings import get_settings
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

ROUNDS = 300


def _workspace() -> tuple[uuid.UUID, uuid.UUID]:
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s))
        create_mail_domain(s, ws, "example.com")
        server = create_server(s, ws)
        create_inbox(s, ws, email_address="first@example.com", server=server)
        return ws.id, server.id


def _claim_when_free(found: list[queue._Claimed]) -> None:
    """Claims back to back (the row is skipped while the change holds it) until one wins."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claimed = queue._claim_and_load("racer", lambda ws: NoopEngine())
        if claimed is not None:
            found.append(claimed)
            return


def test_a_claim_racing_a_joining_change_runs_that_change(committed: Engine) -> None:
    ws_id, server_id = _workspace()
    missed: list[str] = []
    for n in range(ROUNDS):
        with session_scope() as s:
            operations.enqueue(s, s.get_one(Workspace, ws_id), "up", settings=get_settings())
            s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        address = f"user{n}@example.com"
        found: list[queue._Claimed] = []
        racer = threading.Thread(target=_claim_when_free, args=(found,))
        with session_scope() as s:
            ws = workspaces.lock_by_id(s, ws_id)
            assert ws is not None
            # Joins the queued up and holds its row until this transaction commits.
            operations.enqueue(s, ws, "up", settings=get_settings(), workspace_locked=True)
            create_inbox(s, ws, email_address=address, server=s.get_one(VpsServer, server_id))
            racer.start()
            time.sleep((n % 7) / 2000)  # commit at varying points of the racer's claims
        racer.join()
        assert found, "the racer never claimed the queued up"
        config = found[0].config
        assert config is not None
        if address not in {m.address for m in config.mailboxes}:
            missed.append(address)
        with committed.begin() as conn:
            conn.execute(
                text(
                    "UPDATE operations SET status = 'succeeded', lease_owner = NULL,"
                    " lease_expires_at = NULL, finished_at = now() WHERE status = 'running'"
                )
            )
    assert missed == [], f"{len(missed)} of {ROUNDS} runs were claimed without their change"
