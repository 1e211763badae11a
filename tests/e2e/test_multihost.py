"""Three hosts on one Postgres, as docs/deployment.md describes them: `penguinmails api` on one,
`penguinmails worker` on two others, each with its own data directory and host name, sharing
only the database, the secret key and the passphrase. Sandbox workspaces get inboxes created
and deleted from many clients at once; afterwards nothing is lost (every kept inbox provisioned,
every deleted one gone, no operation queued, running or failed), no server was ordered twice
(servers per workspace within what its inboxes needed, provider ids unique, no two runs of one
stack at once), both worker hosts ran operations and registered their host."""

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from benchmarks._fault_harness import audit
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import create_tenant, serving, working

pytestmark = pytest.mark.slow

PER_SERVER = 4
WORKSPACES = 4
FIRST, MORE, DELETED = 8, 2, 3  # per workspace: created, created during the deletions, deleted
WORKER_HOSTS = ("host-b", "host-c")


def _host(database_url: str, root: Path, name: str) -> dict[str, str]:
    """One machine's environment: its own data directory and host name, the shared rest."""
    (root / name).mkdir()
    return child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        pulumi_config_passphrase="one-passphrase-for-every-host",
        data_dir=root / name,
        host_name=name,
        worker_threads=2,
        poll_interval_seconds=0.05,
        coalesce_seconds=0.2,
        inboxes_per_server=PER_SERVER,
        host_heartbeat_seconds=1,
        dns_nameservers="127.0.0.1:9",  # keep the DNS sweep off the outside world
    )


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _settled(db: Engine) -> bool:
    with db.connect() as conn:
        return not conn.scalar(
            text(
                "SELECT count(*) FROM operations WHERE status IN ('queued', 'running')"
                " OR (SELECT count(*) FROM inboxes WHERE status = 'pending_setup') > 0"
            )
        )


def test_api_and_two_workers_on_three_hosts_share_one_postgres(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    api_env = _host(database_url, tmp_path, "host-a")
    worker_envs = [_host(database_url, tmp_path, name) for name in WORKER_HOSTS]
    with serving(api_env, command="api") as base, ExitStack() as stack:
        for env in worker_envs:
            stack.enter_context(working(env))
        key = create_tenant(api_env, "Acme")["api_key"]
        api = httpx.Client(
            base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        workspaces = [
            api.post("/workspaces", json={"name": f"ws{i}", "sandbox": True}).json()["id"]
            for i in range(WORKSPACES)
        ]

        def registered() -> bool:
            with committed.connect() as conn:
                hosts = conn.scalars(text("SELECT DISTINCT host FROM worker_hosts")).all()
            return set(hosts) == set(WORKER_HOSTS)

        _until(registered, 60, "both worker hosts to register")

        def create(n: int) -> str:
            ws = workspaces[n % WORKSPACES]
            got = api.post(
                f"/workspaces/{ws}/inboxes",
                json={
                    "email_address": f"user{n}@team{n % WORKSPACES}.example",
                    "display_name": f"user {n}",
                    "vps_provider": "hetzner",
                    "vps_size": "starter",
                },
            )
            assert got.status_code == 202, got.text
            inbox_id: str = got.json()["id"]
            return inbox_id

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(create, range(FIRST * WORKSPACES)))
        _until(lambda: _settled(committed), 240, "the first inboxes to be provisioned")

        # Deletions and new inboxes at once, on every workspace.
        doomed = first[: DELETED * WORKSPACES]

        def delete(inbox_id: str) -> int:
            return api.delete(f"/inboxes/{inbox_id}").status_code

        with ThreadPoolExecutor(8) as pool:
            more = pool.map(create, range(FIRST * WORKSPACES, (FIRST + MORE) * WORKSPACES))
            gone = pool.map(delete, doomed)
            added, codes = list(more), list(gone)
        assert set(codes) == {202}, codes
        _until(lambda: _settled(committed), 240, "the deletions and new inboxes to settle")
        _until(
            lambda: all(api.get(f"/inboxes/{i}").status_code == 404 for i in doomed),
            60,
            "the deleted inboxes to be gone",
        )

        kept = [i for i in first + added if i not in doomed]
        statuses = {api.get(f"/inboxes/{i}").json()["status"] for i in kept}
        assert statuses <= {"dns_pending", "ready"}, statuses

        counts = audit(committed, tmp_path / "no-journal.jsonl", {}, PER_SERVER)
        assert counts["inboxes"] == len(kept)
        assert counts["lost_inboxes"] == 0
        assert counts["operations_queued"] == 0 and counts["operations_running"] == 0
        with committed.connect() as conn:
            failed = conn.execute(
                text("SELECT kind, error FROM operations WHERE status = 'failed'")
            ).all()
            assert failed == [], failed
            # No duplicate server: never more servers than the inboxes ever created needed.
            servers = conn.execute(
                text(
                    "SELECT workspace_id, count(*), count(DISTINCT provider_server_id),"
                    " bool_and(status = 'ready') FROM vps_servers GROUP BY workspace_id"
                )
            ).all()
            need = math.ceil((FIRST + MORE) / PER_SERVER)
            assert len(servers) == WORKSPACES
            for _, total, distinct_ids, ready in servers:
                assert total <= need and distinct_ids == total and ready, servers
            overlaps = conn.scalar(
                text(
                    "SELECT count(*) FROM operations a JOIN operations b"
                    " ON a.workspace_id = b.workspace_id AND a.id < b.id"
                    " AND a.started_at < b.finished_at AND b.started_at < a.finished_at"
                    " WHERE a.status = 'succeeded' AND b.status = 'succeeded'"
                )
            )
            assert overlaps == 0
            ran_on = set(
                conn.scalars(
                    text(
                        "SELECT DISTINCT split_part(summary->>'worker', ':', 1) FROM operations"
                        " WHERE status = 'succeeded'"
                    )
                )
            )
            assert ran_on == set(WORKER_HOSTS), ran_on
            backends = conn.execute(
                text("SELECT DISTINCT pulumi_backend, backend_local FROM worker_hosts")
            ).all()
            # DATABASE_URL set and no backend: every host on the shared postgres backend.
            assert backends == [("postgres", False)], backends
    # Each host kept its own data directory: no Pulumi home or work dir of one in another's.
    for name in WORKER_HOSTS:
        hosts_dir = tmp_path / name / "pulumi" / "hosts"
        assert not hosts_dir.exists() or [p.name for p in hosts_dir.iterdir()] == [name]
    with committed.connect() as conn:  # the workers left on SIGTERM: their rows went with them
        assert conn.scalar(text("SELECT count(*) FROM worker_hosts")) == 0
