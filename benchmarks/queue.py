"""The operations queue beside a minimal `UPDATE ... RETURNING` worker, in the same run.

    python -m benchmarks queue [--ops 300] [--repeats 3]

`--ops` queued `up` operations, one per workspace (each with a server and an inbox, so our
worker really builds desired state from the database), drained on the no-op engine by 1, 2 and
4 worker processes (one thread each: benchmarks/_queue_worker.py, the operation workers of
`penguinmails worker` without its periodic sweeps), and the same rows (requeued)
drained by as many minimal workers (benchmarks/_minimal_worker.py). Repetitions interleave
minimal and ours. Throughput is operations over the span from the first claim to the last
finish (timestamps in the rows), so process start-up is not counted. Printed: ours / minimal
first (min / median), then ops/s.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from sqlalchemy import text

from benchmarks._database import scratch_database
from benchmarks.operations import _seed


def _requeue() -> None:
    from database.session import session_scope

    with session_scope() as s:
        s.execute(
            text(
                "UPDATE operations SET status='queued', attempts=0, started_at=NULL, "
                "finished_at=NULL, lease_owner=NULL, lease_expires_at=NULL, "
                "run_after=now() - interval '1 second'"
            )
        )


def _analyze() -> None:
    """Planner statistics, as a database in use has them (autovacuum gathers them only minutes
    after a bulk load): without them the claims of both workers, and our load, pick the
    tenant's index over the workspace's (every benchmark workspace has the one tenant)."""
    from database.session import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _drain(kind: str, workers: int, n: int) -> float:
    """ops/s over first claim to last finish."""
    from database.session import session_scope

    _requeue()
    env = {
        **os.environ,
        "PENGUINMAILS_WORKER_THREADS": "1",
        "PENGUINMAILS_ENGINE_OVERRIDE": "noop",
        "PENGUINMAILS_POLL_INTERVAL_SECONDS": "0.01",
        "PENGUINMAILS_LOG_LEVEL": "WARNING",
    }
    if kind == "ours":
        argv = [[sys.executable, "-m", "benchmarks._queue_worker"] for _ in range(workers)]
    else:
        argv = [
            [sys.executable, "-m", "benchmarks._minimal_worker", f"w{i}"] for i in range(workers)
        ]
    procs = [
        subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for a in argv
    ]
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with session_scope() as s:
                done = s.execute(
                    text("SELECT count(*) FROM operations WHERE status = 'succeeded'")
                ).scalar_one()
            if done >= n:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{kind} x{workers}: not drained")
        with session_scope() as s:
            span = s.execute(
                text(
                    "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM operations"
                )
            ).scalar_one()
        return n / float(span)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks queue")
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with scratch_database():
        _seed(args.ops)
        _analyze()
        rates: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.repeats):
            for workers in (1, 2, 4):
                for kind in ("minimal", "ours"):
                    rates.setdefault((kind, workers), []).append(_drain(kind, workers, args.ops))
        print(
            f"operations queue vs a minimal UPDATE ... RETURNING worker, no-op engine, {args.ops} "
            f"up operations on {args.ops} stacks, {args.repeats} interleaved repetitions"
        )
        for workers in (1, 2, 4):
            ratio = [
                o / m
                for o, m in zip(rates[("ours", workers)], rates[("minimal", workers)], strict=True)
            ]
            print(
                f"  {workers} worker(s): ours / minimal {min(ratio):.2f}x / "
                f"{statistics.median(ratio):.2f}x (min / median)   ours "
                f"{statistics.median(rates[('ours', workers)]):.0f} ops/s, minimal "
                f"{statistics.median(rates[('minimal', workers)]):.0f} ops/s (median)"
            )
    return 0
