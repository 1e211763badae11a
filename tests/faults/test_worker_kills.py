"""Workers SIGKILLed at random while they run stacks (several workers, a short lease): every
inbox still gets provisioned, no operation is left queued or running, no two runs of one stack
overlap, and no workspace gets more servers than its inboxes need. Bounded: about 20 inboxes,
kills for 12 s, at most 90 s to settle. `python -m benchmarks faults` runs the same at scale."""

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
from tests.support.environment import TEST_SECRET_KEY, child_env

pytestmark = pytest.mark.slow

PER_SERVER = 3


def fault_env(database_url: str, tmp_path: Path, **extra: object) -> dict[str, str]:
    return child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        poll_interval_seconds=0.05,
        coalesce_seconds=0.2,
        # Short leases, so a killed worker's run is recovered within the test.
        lease_seconds=2,
        retry_backoff_seconds=0.2,
        max_attempts=20,
        # Runs long enough to be killed in the middle of.
        sandbox_latency_seconds=0.8,
        inboxes_per_server=PER_SERVER,
        dns_nameservers="127.0.0.1:9",
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
