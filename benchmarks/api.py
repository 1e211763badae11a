"""The inbox API beside a minimal FastAPI + SQLAlchemy app, in the same run.

    python -m benchmarks api [--clients 50] [--seconds 4] [--repeats 3] [--inboxes 100000]
                             [--threads 24] [--profile FILE] [--only post,get,list]

Both servers run at once on the same Postgres (the scratch database) with the same uvicorn
settings, driven by the same closed-loop client (benchmarks/_load.py). For each of
`POST /workspaces/{id}/inboxes`, `GET /inboxes/{id}` and the inbox list (50 per page), with one
API key per client and with one key shared by all clients, the repetitions interleave: the
minimal app, then ours, `--repeats` times. Printed: the ratios first (ours / minimal:
throughput, and server CPU per request, from psutil on each server process), min and median
over the repetitions, with the count of 503s (a server out of database connections) for each,
then the absolute figures.

Both servers get the same thread limit and a database pool of that size (`--threads`, as
PENGUINMAILS_API_THREADS): ours holds up to `--threads` + `database.session.POOL_OVERFLOW`
connections, the minimal app `--threads`, and the benchmark's own session one more, which must
fit in Postgres's `max_connections` (100 by default) beside whatever else uses that server.
`--profile FILE` runs ours under cProfile in every thread (benchmarks/_profiled_api.py) and
writes the merged stats to FILE (`python -m pstats FILE`); its figures are then not comparable.

Then the duplicate-address check (the statement an inbox create runs to refuse an address that
exists) at 1,000 and at `--inboxes` inboxes: its time (min/median of 200) and its plan.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from benchmarks._database import scratch_database
from benchmarks._load import LoadResult, run_load

BIN = Path(sys.executable).parent / "penguinmails"


def _wait_ready(port: int, path: str) -> None:
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def _seed(clients: int) -> tuple[list[str], str, list[uuid.UUID]]:
    from database.session import session_scope
    from domain.tenants import service as tenants
    from domain.workspaces import service as workspaces
    from domain.workspaces.schemas import WorkspaceCreate

    with session_scope() as s:
        tenant = tenants.create_tenant(s, "bench")
        keys = [tenants.issue_key(s, tenant, f"c{c}").plaintext for c in range(clients)]
        shared = tenants.issue_key(s, tenant, "shared").plaintext
        spaces = [
            workspaces.create(s, tenant.id, WorkspaceCreate(name=f"ws{c}")).id
            for c in range(clients)
        ]
    return keys, shared, spaces


class Server:
    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def _measure(server: Server, tokens: list[str], make, seconds: float) -> tuple[LoadResult, float]:  # type: ignore[no-untyped-def]
    before = server.cpu()
    result = run_load(server.port, tokens, make, seconds)
    return result, server.cpu() - before


def _duplicate_check(counts: list[int]) -> None:
    from database.session import session_scope

    print("duplicate-address check (an inbox create on an address that exists)")
    with session_scope() as s:
        tenant_id, ws_id = s.execute(
            text("SELECT tenant_id, id FROM workspaces ORDER BY created_at LIMIT 1")
        ).one()
    have = 0
    for n in counts:
        with session_scope() as s:
            s.execute(
                text(
                    "INSERT INTO inboxes (id, tenant_id, workspace_id, email_address, status) "
                    "SELECT gen_random_uuid(), :t, :w, 'dup' || g || '@Dup.example', 'ready' "
                    "FROM generate_series(CAST(:a AS int), CAST(:b AS int)) g"
                ),
                {"t": tenant_id, "w": ws_id, "a": have, "b": n - 1},
            )
        have = n
        with session_scope() as s:
            s.execute(text("ANALYZE inboxes"))
        probe = f"dup{n // 2}@dup.example"
        # The pre-check the create ran before this branch, and the insert that now decides.
        statements = {
            "SELECT EXISTS lower()": (
                "SELECT EXISTS (SELECT 1 FROM inboxes WHERE lower(email_address) = :a)"
            ),
            "INSERT ON CONFLICT": (
                "INSERT INTO inboxes (id, tenant_id, workspace_id, email_address) "
                "VALUES (gen_random_uuid(), :t, :w, :a) ON CONFLICT DO NOTHING"
            ),
        }
        for label, sql in statements.items():
            times = []
            with session_scope() as s:
                for _ in range(200):
                    started = time.perf_counter()
                    s.execute(text(sql), {"a": probe, "t": tenant_id, "w": ws_id})
                    times.append(time.perf_counter() - started)
                plan = s.execute(
                    text("EXPLAIN " + sql), {"a": probe, "t": tenant_id, "w": ws_id}
                ).scalars()
                plan_text = " | ".join(line.strip() for line in plan)
                s.rollback()
            print(
                f"  {n:>7,} inboxes  {label:<22} min {min(times) * 1000:.3f} ms  "
                f"median {statistics.median(times) * 1000:.3f} ms   plan: {plan_text}"
            )


def main(argv: list[str]) -> int:
    from tests.support.ports import free_port

    parser = argparse.ArgumentParser(prog="python -m benchmarks api")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inboxes", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--profile", default=None)
    parser.add_argument(
        "--only", default="post,get,list", help="cases to run: post, get, list (comma-separated)"
    )
    args = parser.parse_args(argv)
    with scratch_database():
        keys, shared, spaces = _seed(args.clients)
        env = {
            **os.environ,
            "PENGUINMAILS_LOG_LEVEL": "WARNING",
            "BENCH_TOKENS": ",".join([*keys, shared]),
            "PENGUINMAILS_API_THREADS": str(args.threads),
        }
        ours_argv = [str(BIN), "api", "--port"]
        if args.profile:
            ours_argv = [sys.executable, "-m", "benchmarks._profiled_api", args.profile]
        ours_port, min_port = free_port(), free_port()
        servers = {
            "minimal": Server(
                "minimal",
                [sys.executable, "-m", "benchmarks._minimal_api", str(min_port)],
                min_port,
                env,
            ),
            "ours": Server("ours", [*ours_argv, str(ours_port)], ours_port, env),
        }
        try:
            _wait_ready(ours_port, "/readyz")
            _wait_ready(min_port, "/docs")
            # One inbox (and its domain, DKIM key made once) per client, and one item per
            # client on the minimal app: what the GETs read.
            inbox_ids: list[str] = []
            item_ids: list[str] = []
            for c, ws in enumerate(spaces):
                r = httpx.post(
                    f"http://127.0.0.1:{ours_port}/api/v1/workspaces/{ws}/inboxes",
                    json={
                        "email_address": f"warm@c{c}.example",
                        "vps_provider": "hetzner",
                        "vps_size": "starter",
                    },
                    headers={"Authorization": f"Bearer {keys[c]}"},
                    timeout=60,
                )
                assert r.status_code == 202, r.text
                inbox_ids.append(r.json()["id"])
                r = httpx.post(
                    f"http://127.0.0.1:{min_port}/ws/{ws}/items",
                    json={"email_address": f"warm@c{c}.example"},
                    headers={"Authorization": f"Bearer {keys[c]}"},
                )
                assert r.status_code == 202, r.text
                item_ids.append(r.json()["id"])

            run = [0]

            def post_ours(c: int, n: int):  # type: ignore[no-untyped-def]
                return (
                    "POST",
                    f"/api/v1/workspaces/{spaces[c]}/inboxes",
                    {
                        "email_address": f"u{n}r{run[0]}@c{c}.example",
                        "vps_provider": "hetzner",
                        "vps_size": "starter",
                    },
                )

            def post_min(c: int, n: int):  # type: ignore[no-untyped-def]
                return (
                    "POST",
                    f"/ws/{spaces[c]}/items",
                    {"email_address": f"u{n}r{run[0]}@c{c}.example"},
                )

            cases = {
                "POST inbox": (post_ours, post_min),
                "GET inbox": (
                    lambda c, n: ("GET", f"/api/v1/inboxes/{inbox_ids[c]}", None),
                    lambda c, n: ("GET", f"/items/{item_ids[c]}", None),
                ),
                "list inboxes": (
                    lambda c, n: ("GET", f"/api/v1/workspaces/{spaces[c]}/inboxes?limit=50", None),
                    lambda c, n: ("GET", f"/ws/{spaces[c]}/items?limit=50", None),
                ),
            }
            wanted = {w.strip() for w in args.only.split(",")}
            cases = {k: v for k, v in cases.items() if k.split()[0].lower() in wanted}
            modes = {"key per client": keys, "one shared key": [shared] * args.clients}
            figures: dict[tuple[str, str, str], list[tuple[LoadResult, float]]] = {}
            for _ in range(args.repeats):
                for case, makers in cases.items():
                    for mode, tokens in modes.items():
                        for name, make in (("minimal", makers[1]), ("ours", makers[0])):
                            run[0] += 1
                            figures.setdefault((case, mode, name), []).append(
                                _measure(servers[name], tokens, make, args.seconds)
                            )
        finally:
            for server in servers.values():
                server.stop()

        print(
            f"API vs a minimal FastAPI + SQLAlchemy app, {args.clients} closed-loop clients, "
            f"{args.seconds:g} s per run, {args.repeats} interleaved repetitions (min / median)"
        )
        for case in cases:
            for mode in modes:
                ours = figures[(case, mode, "ours")]
                base = figures[(case, mode, "minimal")]
                tput = [o.rate / b.rate for (o, _), (b, _) in zip(ours, base, strict=True)]
                cpu = [
                    (oc / o.requests) / (bc / b.requests)
                    for (o, oc), (b, bc) in zip(ours, base, strict=True)
                ]
                unavailable = [sum(r.statuses[503] for r, _ in runs) for runs in (ours, base)]
                print(
                    f"  {case:<13} {mode:<15} throughput {min(tput):.2f}x / "
                    f"{statistics.median(tput):.2f}x   server CPU per request "
                    f"{min(cpu):.2f}x / {statistics.median(cpu):.2f}x   "
                    f"503s ours {unavailable[0]} minimal {unavailable[1]}"
                )
        print("absolute (median): req/s, server CPU ms per request, p50 / p99 ms, statuses")
        for (case, mode, name), runs in figures.items():
            rate = statistics.median(r.rate for r, _ in runs)
            cpu_ms = statistics.median(c / r.requests * 1000 for r, c in runs)
            lat = sorted(x for r, _ in runs for x in r.latencies)
            statuses: dict[int, int] = {}
            for r, _ in runs:
                for k, v in r.statuses.items():
                    statuses[k] = statuses.get(k, 0) + v
            print(
                f"  {case:<13} {mode:<15} {name:<8} {rate:7.0f} req/s  {cpu_ms:6.2f} ms CPU  "
                f"p50 {lat[len(lat) // 2] * 1000:.0f} / p99 {lat[int(len(lat) * 0.99)] * 1000:.0f}"
                f"  {statuses}"
            )
        _duplicate_check([1000, args.inboxes])
    return 0
