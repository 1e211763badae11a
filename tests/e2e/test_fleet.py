"""The fleet end to end over HTTP against real processes on one Postgres: sandbox provisioning,
several workers sharing the queue, failover after SIGKILL, coalescing."""

import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import create_tenant, serving, working

pytestmark = pytest.mark.slow


def _env(database_url: str, tmp_path: Path, **extra: object) -> dict[str, str]:
    settings: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "data_dir": tmp_path,
        "poll_interval_seconds": 0.05,
        "coalesce_seconds": 0.2,
        # DNS sweeps would query the outside world for example domains: keep them local.
        "dns_nameservers": "127.0.0.1:9",
    }
    return child_env(**{**settings, **extra})


def _until(
    check: Callable[[], Any],
    timeout: float = 90,
    what: str = "condition",
    state: Callable[[], object] | None = None,
) -> Any:
    """`state` describes what the system looked like when the wait ran out (for the failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f": {state()}" if state else ""))


def _queue_state(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT workspace_id, kind, status, attempts, run_after, lease_owner, error"
                    " FROM operations ORDER BY workspace_id, created_at"
                )
            )
        ]


def _inbox(address: str, size: str = "starter") -> dict[str, str]:
    return {
        "email_address": address,
        "display_name": address.split("@")[0],
        "vps_provider": "hetzner",
        "vps_size": size,
    }


def test_sandbox_inbox_lifecycle_through_serve(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    with serving(env) as base:
        key = create_tenant(env, "Acme")["api_key"]
        api = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        ws = api.post("/workspaces", json={"name": "eu", "sandbox": True}).json()["id"]
        created = api.post(f"/workspaces/{ws}/inboxes", json=_inbox("sales@acme.example"))
        assert created.status_code == 202, created.text
        inbox = created.json()

        def provisioned() -> dict[str, Any] | None:
            got = api.get(f"/inboxes/{inbox['id']}").json()
            return got if got["status"] != "pending_setup" else None

        after = _until(provisioned, what="inbox to leave pending_setup")
        assert after["status"] in ("dns_pending", "ready"), after
        server = api.get(f"/vps/{inbox['vps_id']}").json()
        assert server["status"] == "ready" and server["ip_address"] and server["hostname"]
        assert server["provider_server_id"] and server["engine"] == "sandbox"
        op = api.get(f"/operations/{inbox['operation_id']}").json()
        assert op["status"] == "succeeded", op
        types = {c["type"] for c in op["resource_changes"]}
        assert "hcloud:index/server:Server" in types and "hcloud:index/firewall:Firewall" in types
        assert "hcloud:index/rdns:Rdns" in types and "command:remote:Command" in types
        assert api.get(f"/inboxes/{inbox['id']}/dns-records").json()["records"]

        deleted = api.delete(f"/inboxes/{inbox['id']}")
        assert deleted.status_code == 202
        _until(
            lambda: api.get(f"/inboxes/{inbox['id']}").status_code == 404, what="inbox to be gone"
        )
        removal = api.get(f"/operations/{deleted.json()['operation_id']}").json()
        assert any(
            c["op"] == "delete" and c["type"] == "command:remote:Command"
            for c in removal["resource_changes"]
        ), removal["resource_changes"]
        preview = api.get(f"/workspaces/{ws}/preview", params={"wait": 30}).json()
        assert preview["status"] == "succeeded" and preview["resource_changes"] == []


def test_two_workers_share_the_queue_without_overlap(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path, worker_threads=2)
    with serving(env, command="api") as base, ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(working(env))
        key = create_tenant(env, "Acme")["api_key"]
        api = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        workspaces = [
            api.post("/workspaces", json={"name": f"ws{i}"}).json()["id"] for i in range(5)
        ]

        def create(n: int) -> int:
            ws = workspaces[n % 5]
            return api.post(
                f"/workspaces/{ws}/inboxes", json=_inbox(f"user{n}@team{n % 5}.example")
            ).status_code

        with ThreadPoolExecutor(10) as pool:
            assert set(pool.map(create, range(50))) == {202}

        def all_provisioned() -> bool:
            with committed.connect() as conn:
                return (
                    conn.execute(
                        text("SELECT count(*) FROM inboxes WHERE status = 'pending_setup'")
                    ).scalar_one()
                    == 0
                )

        _until(
            all_provisioned,
            timeout=180,
            what="50 inboxes to be provisioned",
            state=lambda: _queue_state(committed),
        )
        with committed.connect() as conn:
            servers = conn.execute(
                text("SELECT workspace_id, count(*) FROM vps_servers GROUP BY workspace_id")
            ).all()
            assert len(servers) == 5 and all(n == 1 for _, n in servers), servers
            assert (
                conn.execute(
                    text("SELECT count(*) FROM vps_servers WHERE status <> 'ready'")
                ).scalar_one()
                == 0
            )
            overlaps = conn.execute(
                text("""
                SELECT count(*) FROM operations a JOIN operations b
                  ON a.workspace_id = b.workspace_id AND a.id < b.id
                 AND a.started_at < b.finished_at AND b.started_at < a.finished_at
                WHERE a.status = 'succeeded' AND b.status = 'succeeded'""")
            ).scalar_one()
            assert overlaps == 0
            workers = conn.execute(
                text(
                    "SELECT count(DISTINCT split_part(summary->>'worker', ':', 2)) FROM operations"
                )
            ).scalar_one()
            assert workers == 2, "both worker processes should have run operations"


def test_a_killed_workers_operation_is_finished_by_another(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = _env(
        database_url,
        tmp_path,
        sandbox_latency_seconds=4,
        lease_seconds=1.5,
        worker_threads=1,
    )
    with serving(env, command="api") as base:
        key = create_tenant(env, "Acme")["api_key"]
        api = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        ws = api.post("/workspaces", json={"name": "eu"}).json()["id"]
        op_id = api.post(f"/workspaces/{ws}/inboxes", json=_inbox("sales@acme.example")).json()[
            "operation_id"
        ]
        with working(env) as victim:
            owner = _until(
                lambda: api.get(f"/operations/{op_id}").json()["status"] == "running",
                what="the first worker to start the operation",
            )
            assert owner
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        with working(env):
            done = _until(
                lambda: (
                    (o := api.get(f"/operations/{op_id}").json())["status"]
                    in ("succeeded", "failed")
                    and o
                ),
                timeout=60,
                what="takeover",
            )
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2


def test_ten_quick_changes_make_at_most_two_runs(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    # A window wider than the burst, so a slow machine still sends all ten inside it.
    env = _env(database_url, tmp_path, coalesce_seconds=3.0)
    with serving(env) as base:
        key = create_tenant(env, "Acme")["api_key"]
        api = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        ws = api.post("/workspaces", json={"name": "eu"}).json()["id"]
        with ThreadPoolExecutor(10) as pool:
            codes = list(
                pool.map(
                    lambda n: (
                        api.post(
                            f"/workspaces/{ws}/inboxes", json=_inbox(f"u{n}@acme.example")
                        ).status_code
                    ),
                    range(10),
                )
            )
        assert codes == [202] * 10
        _until(
            lambda: all(
                i["status"] != "pending_setup"
                for i in api.get(f"/workspaces/{ws}/inboxes").json()["items"]
            ),
            what="all inboxes provisioned",
        )
        ups = api.get(f"/workspaces/{ws}/operations").json()["items"]
        assert 1 <= len([o for o in ups if o["kind"] == "up"]) <= 2, ups
