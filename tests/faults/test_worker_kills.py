"""Workers SIGKILLed at random while they run stacks (several workers, a short lease): every
inbox still gets provisioned, no operation is left queued or running, no two runs of one stack
overlap, and no workspace gets more servers than its inboxes need. Bounded: about 20 inboxes,
kills for 12 s, at most 90 s to settle. `python -m benchmarks faults` runs the same at scale."""

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from benchmarks._fault_harness import (
    ZERO_COUNTS,
    api_process,
    audit,
    cluster,
    create_inboxes,
    create_workspaces,
    kill_randomly,
    settle,
    tenant_key,
)
from tests.support.serving import base_env

pytestmark = pytest.mark.slow

PER_SERVER = 3


def fault_env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return base_env(
        PENGUINMAILS_DATABASE_URL=database_url,
        PENGUINMAILS_SECRET_KEY=os.environ["PENGUINMAILS_SECRET_KEY"],
        PENGUINMAILS_DATA_DIR=str(tmp_path),
        PENGUINMAILS_POLL_INTERVAL_SECONDS="0.05",
        PENGUINMAILS_COALESCE_SECONDS="0.2",
        # Short leases, so a killed worker's run is recovered within the test.
        PENGUINMAILS_LEASE_SECONDS="2",
        PENGUINMAILS_RETRY_BACKOFF_SECONDS="0.2",
        PENGUINMAILS_MAX_ATTEMPTS="20",
        # Runs long enough to be killed in the middle of.
        PENGUINMAILS_SANDBOX_LATENCY_SECONDS="0.8",
        PENGUINMAILS_INBOXES_PER_SERVER=str(PER_SERVER),
        PENGUINMAILS_DNS_NAMESERVERS="127.0.0.1:9",
        **extra,
    )


def test_random_worker_kills_lose_nothing(
    committed: Engine, database_url: str, tmp_path: Path
) -> None:
    env = fault_env(database_url, tmp_path)
    journal = tmp_path / "runs.jsonl"
    key = tenant_key(env)
    with (
        api_process(env, tmp_path / "api.log") as base,
        cluster(env, journal, workers=3, logs=tmp_path) as workers,
    ):
        workspaces = create_workspaces(base, key, 4)
        join = kill_randomly(workers, seconds=12, interval=(1.0, 2.5))
        accepted = create_inboxes(base, key, workspaces, per_workspace=5, clients=4)
        join()
        settled = settle(committed, timeout=90)
    counts = audit(committed, journal, workers.kills, PER_SERVER)
    print("worker kills:", counts)
    assert counts["kills"] >= 3, "the test must actually kill workers"
    assert len(accepted) == counts["inboxes"] == 20
    assert settled, counts
    assert {name: counts[name] for name in ZERO_COUNTS} == dict.fromkeys(ZERO_COUNTS, 0)
