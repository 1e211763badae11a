"""The refusal: a live stack does not run on a machine-local (file) Pulumi backend while
workers of another host share the database; sandbox stacks and shared backends are unaffected.
Against real Postgres, through the queue's own `run_one`, with a fake engine (the boundary)."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text

from automation import queue
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.session import session_scope
from domain.hosts import backends
from domain.hosts import service as hosts
from domain.operations import service as operations
from kit.time import utcnow
from settings import get_settings
from tests.support.engine_fakes import FleetEcho
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)
from tests.support.fixtures import OverrideSettings


def _fleet(*, sandbox: bool) -> uuid.UUID:
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s), sandbox=sandbox)
        create_mail_domain(s, ws, "example.com")
        server = create_server(
            s, ws, ip_address=None, status="provisioning", mail_server_status="not_configured"
        )
        create_inbox(s, ws, email_address=f"{uuid.uuid4().hex[:8]}@example.com", server=server)
        operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        return ws.id


def _register(host: str, *, local: bool, seen_ago: float = 0.0) -> None:
    now = utcnow()
    with session_scope() as s:
        hosts.beat(
            s,
            host=host,
            pid=4242,
            started_at=now - timedelta(hours=1),
            now=now - timedelta(seconds=seen_ago),
            pulumi_backend="file" if local else "postgres",
            backend_local=local,
        )


def _run(engine: FleetEcho) -> None:
    while queue.run_one("worker-a:1:0", lambda ws: engine):
        pass


def _op(ws_id: uuid.UUID) -> Operation:
    with session_scope() as s:
        return s.scalars(select(Operation).where(Operation.workspace_id == ws_id)).one()


@pytest.fixture
def on_file_backend(override_settings: OverrideSettings) -> None:
    # Live workspaces with Hetzner servers need a token for their config to build.
    override_settings(
        host_name="worker-a",
        pulumi_backend_url="file:///var/lib/pm-state",
        hetzner_token="test-token",
    )


def test_live_run_refused_on_a_file_backend_when_another_host_is_registered(
    committed: Engine, on_file_backend: None
) -> None:
    _register("worker-a", local=True)
    _register("worker-b", local=True)
    live, sandbox = _fleet(sandbox=False), _fleet(sandbox=True)
    engine = FleetEcho()
    _run(engine)
    refused = _op(live)
    assert refused.status == "failed"
    assert refused.attempts == 1  # permanent: not retried into the same refusal
    assert "live stacks refused on host worker-a" in (refused.error or "")
    assert "worker-b" in (refused.error or "")
    assert "PENGUINMAILS_PULUMI_BACKEND_URL" in (refused.error or "")
    assert "postgres://" in (refused.error or "")
    # The engine never ran the live stack; the sandbox one ran as usual.
    assert [stack for _, stack, _ in engine.calls] == [f"ws-{sandbox.hex}"]
    assert _op(sandbox).status == "succeeded"
    with session_scope() as s:
        statuses = {
            srv.workspace_id: srv.status
            for srv in s.scalars(
                select(VpsServer).where(VpsServer.workspace_id.in_([live, sandbox]))
            )
        }
    assert statuses == {live: "failed", sandbox: "ready"}


def test_alone_on_the_database_a_file_backend_runs(
    committed: Engine, on_file_backend: None
) -> None:
    _register("worker-a", local=True)
    # Another host's row gone stale (it stopped without saying so) does not count.
    _register("worker-b", local=True, seen_ago=get_settings().host_stale_seconds + 5)
    live = _fleet(sandbox=False)
    _run(FleetEcho())
    assert _op(live).status == "succeeded"


def test_a_shared_backend_runs_beside_other_hosts(
    committed: Engine, override_settings: OverrideSettings
) -> None:
    # No backend set, DATABASE_URL set (the test run's): the postgres backend, shared.
    override_settings(host_name="worker-a", pulumi_backend_url=None, hetzner_token="test-token")
    assert backends.resolve(get_settings(), {}).kind == "postgres"
    _register("worker-a", local=False)
    _register("worker-b", local=False)
    live = _fleet(sandbox=False)
    _run(FleetEcho())
    assert _op(live).status == "succeeded"


def test_the_check_and_the_preflight_finding(committed: Engine, on_file_backend: None) -> None:
    with session_scope() as s:
        assert backends.check(s, get_settings()) is None
        assert backends.deployment_finding(s, get_settings()) is None
    _register("worker-a", local=False)
    _register("worker-b", local=False)
    with session_scope() as s:
        # This host (file backend) would be refused; the deployment as registered is fine.
        finding = backends.check(s, get_settings())
        assert finding is not None and finding.code == "machine_local_pulumi_state"
        assert finding.hosts == ["worker-a", "worker-b"] and finding.local_hosts == ["worker-a"]
        assert backends.deployment_finding(s, get_settings()) is None
    _register("worker-c", local=True)
    with session_scope() as s:
        preflight = backends.deployment_finding(s, get_settings())
        assert preflight is not None
        assert preflight.hosts == ["worker-a", "worker-b", "worker-c"]
        assert preflight.local_hosts == ["worker-c"]
        assert "worker-c keeps Pulumi state in a file backend" in preflight.message
        assert preflight.as_dict()["code"] == "machine_local_pulumi_state"
