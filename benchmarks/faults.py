"""Fault benchmark: real processes on a scratch database, faults injected, then an audit.

    python -m benchmarks faults [--only kills|clients] [--quick]
                                [--kill-seconds 120] [--client-seconds 60] [--clients 50]

1. kills: one `penguinmails api` and 3 journaling worker processes (benchmarks/_fault_harness.py);
   a random worker is SIGKILLed (and replaced) every 3-8 s for `--kill-seconds`, while a handful
   of clients create 100 inboxes in 10 sandbox workspaces (in rounds over the first half of the
   window, so the queue has work throughout) and then while the queue drains. Short lease (5 s),
   2 s of simulated provider time per run (kills land mid-run), 5 inboxes per server. Then it
   settles (at most 180 s) and the audit is printed: inboxes lost, operations left queued or
   running, overlapping runs of one stack, servers beyond need; kills (and how many hit a
   running stack); the create latency percentiles.
2. clients: `--clients` concurrent clients for `--client-seconds`, one API key shared by all,
   each in a closed loop creating inboxes spread over 10 workspaces, while 3 workers drain the
   queue. Prints requests, throughput, status counts (a deadlock that reaches a client is a
   5xx), p50/p95/p99/max latency, and after settling the audit (nothing frozen).

Each scenario runs on its own scratch database. Timings are figures, never asserted; the exit
code is 1 only when a count that must be zero is not (ZERO_COUNTS, accepted inboxes missing
from the database, and in `clients` 5xx answers and requests that got no answer at all).
`--quick` is a smoke run: 20 inboxes and 15 s of kills, 10 clients for 10 s.

The API and the workers run the tree this file is in (see `_fault_harness.CLI`), so another
checkout runs its own code with `PYTHONPATH=<checkout>`; the first lines name the files loaded.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, pool, text

from benchmarks._database import scratch_database
from benchmarks._fault_harness import (
    ZERO_COUNTS,
    Load,
    api_process,
    audit,
    cluster,
    create_inboxes,
    create_inboxes_for,
    create_workspaces,
    imported_from,
    kill_randomly,
    kills_mid_run,
    settle,
    tenant_key,
)
from tests.support.environment import child_env


def _env(url: str, data_dir: Path, **settings: object) -> dict[str, str]:
    fields: dict[str, object] = {
        "database_url": url,
        "secret_key": os.environ["PENGUINMAILS_SECRET_KEY"],
        "data_dir": data_dir,
        "log_level": "WARNING",
        "poll_interval_seconds": 0.05,
        "coalesce_seconds": 0.2,
        "retry_backoff_seconds": 0.2,
        "max_attempts": 20,
        "dns_nameservers": "127.0.0.1:9",  # nothing here resolves anything
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    return child_env(**{**fields, **settings})


def _missing(engine: Engine, accepted: list[str]) -> int:
    """Inboxes the API answered 202 for that are not in the database."""
    with engine.connect() as conn:
        stored = {str(i) for i in conn.scalars(text("SELECT id FROM inboxes"))}
    return len(set(accepted) - stored)


def _ms(p: dict[str, float]) -> str:
    if not p:
        return "no requests"
    return "  ".join(f"{k.removesuffix('_ms')} {v:,.0f} ms" for k, v in p.items())


def _print_counts(counts: dict[str, int], extra_zero: dict[str, int]) -> int:
    zero = {name: counts[name] for name in ZERO_COUNTS} | extra_zero
    bad = sum(1 for v in zero.values() if v)
    print("  must be 0: " + "  ".join(f"{k} {v}" for k, v in zero.items()))
    print(
        f"  also: inboxes {counts['inboxes']}  operations_superseded "
        f"{counts['operations_superseded']}  max_attempts_used {counts['max_attempts_used']}"
    )
    return bad


def _kills(args: argparse.Namespace, logs: Path) -> int:
    workspaces_n, per_workspace = (4, 5) if args.quick else (10, 10)
    per_server, create_clients, settle_limit = 5, 5, (90 if args.quick else 180)
    # Inboxes go in in rounds (one per workspace each) over the first half of the kill window.
    rounds = per_workspace
    create_window = args.kill_seconds / 2
    print(
        f"faults/kills: 1 API, 3 workers, a random worker SIGKILLed every 3-8 s for "
        f"{args.kill_seconds:g} s; {workspaces_n * per_workspace} inboxes in {workspaces_n} "
        f"sandbox workspaces ({per_workspace} each, {rounds} rounds over {create_window:g} s, "
        f"{create_clients} clients); lease 5 s, 2 s per run, {per_server} inboxes per server"
    )
    with scratch_database() as url:
        env = _env(
            url,
            logs / "kills",
            lease_seconds=5,
            sandbox_latency_seconds=2,
            inboxes_per_server=per_server,
        )
        engine = create_engine(url, poolclass=pool.NullPool)
        journal = logs / "kills" / "runs.jsonl"
        key = tenant_key(env)
        load = Load()
        accepted: list[str] = []
        with (
            api_process(env, logs / "kills" / "api.log") as base,
            cluster(env, journal, workers=3, logs=logs / "kills") as workers,
        ):
            workspaces = create_workspaces(base, key, workspaces_n)
            started = time.monotonic()
            join = kill_randomly(workers, seconds=args.kill_seconds, interval=(3.0, 8.0))
            for r in range(rounds):
                due = started + r * create_window / rounds
                time.sleep(max(0.0, due - time.monotonic()))
                accepted += create_inboxes(
                    base, key, workspaces, 1, create_clients, load=load, prefix=f"r{r}-user"
                )
            created = time.monotonic() - started
            join()
            kill_end = time.monotonic()
            settled = settle(engine, timeout=settle_limit)
            settle_time = time.monotonic() - kill_end
        counts = audit(engine, journal, workers.kills, per_server)
        mid = kills_mid_run(journal, workers.kills)
        missing = _missing(engine, accepted)
        engine.dispose()
    print(
        f"  inboxes accepted {len(accepted)}/{workspaces_n * per_workspace} in {created:.1f} s; "
        f"statuses {dict(sorted(load.statuses.items()))}, no answer {len(load.errors)}"
    )
    print(f"  create latency: {_ms(load.percentiles())}")
    print(
        f"  kills {counts['kills']} ({mid} while the worker was running a stack); "
        + (
            f"settled {settle_time:.1f} s after the last kill"
            if settled
            else f"NOT settled {settle_limit} s after the last kill"
        )
    )
    return _print_counts(counts, {"accepted_missing": missing})


def _clients(args: argparse.Namespace, logs: Path) -> int:
    clients = 10 if args.quick else args.clients
    seconds = 10.0 if args.quick else args.client_seconds
    workspaces_n, per_server, workers_n, settle_limit = 10, 10, 3, (90 if args.quick else 180)
    print(
        f"faults/clients: {clients} clients for {seconds:g} s, one API key, closed loop "
        f"POST .../inboxes over {workspaces_n} sandbox workspaces; 1 API, {workers_n} workers "
        f"draining (0.5 s per run, {per_server} inboxes per server)"
    )
    with scratch_database() as url:
        env = _env(
            url,
            logs / "clients",
            lease_seconds=15,
            sandbox_latency_seconds=0.5,
            inboxes_per_server=per_server,
        )
        engine = create_engine(url, poolclass=pool.NullPool)
        journal = logs / "clients" / "runs.jsonl"
        key = tenant_key(env)
        load = Load()
        with (
            api_process(env, logs / "clients" / "api.log") as base,
            cluster(env, journal, workers=workers_n, logs=logs / "clients") as workers,
        ):
            workspaces = create_workspaces(base, key, workspaces_n)
            started = time.monotonic()
            accepted = create_inboxes_for(base, key, workspaces, seconds, clients, load=load)
            wall = time.monotonic() - started
            settled = settle(engine, timeout=settle_limit)
            settle_time = time.monotonic() - started - wall
        counts = audit(engine, journal, workers.kills, per_server)
        missing = _missing(engine, accepted)
        engine.dispose()
    requests = len(load.latencies)
    print(
        f"  {requests} requests in {wall:.1f} s, {requests / wall:.1f} req/s, "
        f"{len(accepted)} inboxes accepted"
    )
    print(
        f"  statuses {dict(sorted(load.statuses.items()))}, 5xx {load.server_errors()}, "
        f"no answer {len(load.errors)}"
        + (f" ({', '.join(sorted(set(load.errors)))})" if load.errors else "")
    )
    print(f"  latency: {_ms(load.percentiles())}")
    print(
        f"  settled {settle_time:.1f} s after the load"
        if settled
        else f"  NOT settled {settle_limit} s after the load"
    )
    return _print_counts(
        counts,
        {
            "accepted_missing": missing,
            "server_errors": load.server_errors(),
            "no_answer": len(load.errors),
        },
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks faults")
    parser.add_argument("--only", choices=("kills", "clients"))
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--kill-seconds", type=float, default=120.0)
    parser.add_argument("--client-seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    if args.quick:
        args.kill_seconds = min(args.kill_seconds, 15.0)
    import automation.queue

    print(f"code under test: automation.queue from {automation.queue.__file__} (benchmark)")
    print(f"  and {imported_from(dict(os.environ))} (API and worker processes)")
    logs = Path(tempfile.mkdtemp(prefix="pm-faults-"))
    bad = 0
    scenarios: dict[str, Any] = {"kills": _kills, "clients": _clients}
    for name, run in scenarios.items():
        if args.only in (None, name):
            bad += run(args, logs)
            sys.stdout.flush()
    if bad:
        print(f"{bad} count(s) that must be 0 are not; logs kept in {logs}")
        return 1
    shutil.rmtree(logs, ignore_errors=True)
    return 0
