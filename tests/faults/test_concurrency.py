"""Many clients at once against a real API process: concurrent creates and edits while workers
finish runs (no deadlock surfaces as a 5xx, nothing is left frozen), a long preview beside
ordinary requests with the same key (they do not wait for it), and 60 concurrent requests on
one key (every one answers). Bounded in count and time."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from benchmarks._fault_harness import (
    ZERO_COUNTS,
    Load,
    api_process,
    audit,
    cluster,
    create_inboxes,
    create_workspaces,
    settle,
    tenant_key,
)
from tests.support.environment import TEST_SECRET_KEY, child_env

pytestmark = pytest.mark.slow

PER_SERVER = 4


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        poll_interval_seconds=0.05,
        coalesce_seconds=0.1,
        inboxes_per_server=PER_SERVER,
        dns_nameservers="127.0.0.1:9",
    )


@pytest.fixture
def api(committed: Engine, database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    env = _env(database_url, tmp_path)
    key = tenant_key(env)
    with api_process(env, tmp_path / "api.log") as base:
        yield base, key


def test_concurrent_creates_and_edits_while_workers_finish(
    committed: Engine, api: tuple[str, str], database_url: str, tmp_path: Path
) -> None:
    """Few workspaces, many clients: every create locks a workspace that a worker's finish is
    also locking, the pattern that deadlocked (workspace then server against server then
    workspace). Renames and deletes run beside them. The workspaces' caps are smaller than
    their inbox counts (a share below 1 a day)."""
    base, key = api
    env = _env(database_url, tmp_path)
    load = Load()
    with cluster(env, tmp_path / "runs.jsonl", workers=2, logs=tmp_path) as workers:
        workspaces = create_workspaces(base, key, 3)
        editing = threading.Event()
        headers = {"Authorization": f"Bearer {key}"}
        # Caps below the inboxes that share them (16 on one domain, 4 a server): every share
        # is under 1 a day, which must still deploy. A share of 0 failed the config check of
        # every run of the workspace, and so every inbox in it.
        for ws in workspaces:
            r = httpx.put(
                f"{base}/api/v1/workspaces/{ws}/warmup-policy",
                json={"domain_daily_cap": 4, "server_daily_cap": 2},
                headers=headers,
                timeout=60,
            )
            assert r.status_code == 200, r.text

        def edit() -> None:  # renames and deletes of what exists, while creates go on
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                while not editing.is_set():
                    for ws in workspaces:
                        page = http.get(f"/api/v1/workspaces/{ws}/inboxes?limit=5").json()
                        for n, inbox in enumerate(page["items"]):
                            if n == 0 and inbox["status"] != "deleting":
                                r = http.delete(f"/api/v1/inboxes/{inbox['id']}")
                            else:
                                r = http.patch(
                                    f"/api/v1/inboxes/{inbox['id']}",
                                    json={"display_name": f"renamed {n}"},
                                )
                            load.record(r.status_code, 0.0)

        editor = threading.Thread(target=edit)
        editor.start()
        try:
            accepted = create_inboxes(
                base, key, workspaces, per_workspace=16, clients=24, load=load
            )
        finally:
            editing.set()
            editor.join()
        settled = settle(committed, timeout=120)
    counts = audit(committed, workers.journal, workers.kills, PER_SERVER)
    print("concurrent creates:", dict(load.statuses), counts)
    assert load.server_errors() == 0, dict(load.statuses)
    assert not load.errors, load.errors[:5]
    assert len(accepted) == 48
    # Edits of deleted inboxes may be 404/409; nothing else but success is acceptable.
    assert set(load.statuses) <= {200, 202, 404, 409}, dict(load.statuses)
    assert settled, counts
    assert {name: counts[name] for name in ZERO_COUNTS} == dict.fromkeys(ZERO_COUNTS, 0)


def test_a_long_preview_does_not_stall_requests_with_the_same_key(
    committed: Engine, api: tuple[str, str]
) -> None:
    """No worker runs, so the preview waits its whole `wait`. Before, it held the key's row
    lock (the `last_used_at` refresh) for all of it, and every other request with the key
    waited behind it. Here the others all answer while the preview is still waiting."""
    base, key = api
    headers = {"Authorization": f"Bearer {key}"}
    (ws,) = create_workspaces(base, key, 1)
    with committed.begin() as conn:  # due for a refresh, the path that took the lock
        conn.execute(text("UPDATE api_keys SET last_used_at = now() - interval '1 hour'"))
    preview_done = threading.Event()

    def preview() -> int:
        try:
            r = httpx.get(
                f"{base}/api/v1/workspaces/{ws}/preview?wait=15", headers=headers, timeout=60
            )
            return r.status_code
        finally:
            preview_done.set()

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(preview)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            for _ in range(20):
                assert http.get(f"/api/v1/workspaces/{ws}").status_code == 200
        assert not preview_done.is_set(), "the ordinary requests waited for the preview"
        assert waiting.result() == 202  # still queued: no worker


def test_sixty_concurrent_requests_on_one_key_all_answer(
    committed: Engine, api: tuple[str, str]
) -> None:
    """41 or more waiting requests on one key used to wedge the API for good: the waiters held
    every request thread, so the lock holder never got one to commit. Here 40 long previews
    and 20 ordinary requests go at once, and /healthz answers throughout."""
    base, key = api
    headers = {"Authorization": f"Bearer {key}"}
    (ws,) = create_workspaces(base, key, 1)
    with committed.begin() as conn:
        conn.execute(text("UPDATE api_keys SET last_used_at = NULL"))

    def call(i: int) -> int:
        path = f"/api/v1/workspaces/{ws}/preview?wait=5" if i % 3 else f"/api/v1/workspaces/{ws}"
        return httpx.get(f"{base}{path}", headers=headers, timeout=90).status_code

    with ThreadPoolExecutor(max_workers=61) as pool:
        answers = [pool.submit(call, i) for i in range(60)]
        health = httpx.get(f"{base}/healthz", timeout=30)
        statuses = [a.result(timeout=120) for a in answers]
    assert health.status_code == 200
    assert set(statuses) <= {200, 202}, statuses
    assert len(statuses) == 60
    with committed.connect() as conn:  # one preview, reused by every waiting request
        previews = conn.scalar(text("SELECT count(*) FROM operations WHERE kind = 'preview'"))
    assert previews == 1
