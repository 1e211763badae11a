"""Operations queue and inbox API benchmark.

    python -m benchmarks operations [--ops 1000] [--requests 1000] [--clients 50]

1. Throughput: `--ops` queued `up` operations (one per workspace, each with a server and an
   inbox, so desired state is really built from the database) drained by 1, 2 and 4 worker
   processes (`penguinmails worker`, one thread each) on the no-op engine. Prints operations
   claimed and finished per second.
2. Latency: `--clients` concurrent clients send `--requests` `POST .../inboxes` in total to one
   `penguinmails api` process (no workers running). Prints p50/p95/p99 and requests per second.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from benchmarks._database import scratch_database
from settings import get_settings

BIN = Path(sys.executable).parent / "penguinmails"


def _seed(n: int) -> None:
    from database.models.mail_domains import MailDomain
    from database.session import session_scope
    from domain.operations import service as operations
    from domain.tenants import service as tenants
    from domain.workspaces import service as workspaces
    from domain.workspaces.schemas import WorkspaceCreate
    from tests.support.factories import create_inbox, create_mail_domain, create_server

    with session_scope() as s:
        tenant = tenants.create_tenant(s, "bench")
        template: MailDomain | None = None
        for i in range(n):
            ws = workspaces.create(s, tenant.id, WorkspaceCreate(name=f"ws{i}"))
            if template is None:
                template = create_mail_domain(s, ws, f"d{i}.example")
            else:  # one RSA key for all: key generation is not what is measured
                s.add(
                    MailDomain(
                        tenant_id=tenant.id,
                        workspace_id=ws.id,
                        name=f"d{i}.example",
                        dkim_selector=template.dkim_selector,
                        dkim_public_key=template.dkim_public_key,
                        dkim_private_key_encrypted=template.dkim_private_key_encrypted,
                    )
                )
            server = create_server(s, ws, status="provisioning")
            create_inbox(s, ws, email_address=f"u{i}@d{i}.example", server=server)
            operations.enqueue(s, ws, "up", settings=get_settings())
        s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))


def _drain(workers: int, n: int) -> float:
    from database.session import session_scope

    with session_scope() as s:
        s.execute(
            text(
                "UPDATE operations SET status='queued', attempts=0, started_at=NULL, "
                "finished_at=NULL, run_after=now() - interval '1 second'"
            )
        )
    env = {
        **os.environ,
        "PENGUINMAILS_WORKER_THREADS": "1",
        "PENGUINMAILS_ENGINE_OVERRIDE": "noop",
        "PENGUINMAILS_POLL_INTERVAL_SECONDS": "0.01",
        "PENGUINMAILS_LOG_LEVEL": "WARNING",
    }
    procs = [
        subprocess.Popen(
            [str(BIN), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        started = time.monotonic()
        while True:
            with session_scope() as s:
                done = s.execute(
                    text("SELECT count(*) FROM operations WHERE status = 'succeeded'")
                ).scalar_one()
            if done >= n:
                return time.monotonic() - started
            time.sleep(0.02)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def _latency(requests: int, clients: int, api_workers: int) -> None:
    from tests.support.ports import free_port
    from tests.support.serving import create_tenant

    env = {**os.environ, "PENGUINMAILS_LOG_LEVEL": "WARNING"}
    key = create_tenant(env, "latency")["api_key"]
    port = free_port()
    api = subprocess.Popen(
        [str(BIN), "api", "--port", str(port), "--workers", str(api_workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        spaces = [
            httpx.post(f"{base}/workspaces", json={"name": f"lat{c}"}, headers=headers).json()["id"]
            for c in range(clients)
        ]
        latencies: list[float] = []
        errors: list[int] = []
        lock = threading.Lock()
        per_client = requests // clients

        def client(c: int) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                # One domain per client: its DKIM key is made once, as for a real sender.
                http.post(
                    f"/workspaces/{spaces[c]}/inboxes",
                    json={
                        "email_address": f"warm@c{c}-w{api_workers}.example",
                        "vps_provider": "hetzner",
                        "vps_size": "starter",
                    },
                )
                for i in range(per_client):
                    t = time.perf_counter()
                    r = http.post(
                        f"/workspaces/{spaces[c]}/inboxes",
                        json={
                            "email_address": f"u{i}@c{c}-w{api_workers}.example",
                            "vps_provider": "hetzner",
                            "vps_size": "starter",
                        },
                    )
                    with lock:
                        latencies.append(time.perf_counter() - t)
                        if r.status_code != 202:
                            errors.append(r.status_code)

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started
        q = statistics.quantiles(latencies, n=100)
        print(
            f"POST /workspaces/{{id}}/inboxes, `api --workers {api_workers}`, {clients} clients, "
            f"{len(latencies)} requests, {len(errors)} non-202"
        )
        print(
            f"  p50 {q[49] * 1000:.1f} ms   p95 {q[94] * 1000:.1f} ms   "
            f"p99 {q[98] * 1000:.1f} ms   {len(latencies) / wall:.0f} req/s"
        )
    finally:
        api.terminate()
        api.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks operations")
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args(argv)
    with scratch_database():
        _seed(args.ops)
        print(f"operations queue, no-op engine, {args.ops} up operations on {args.ops} stacks")
        for workers in (1, 2, 4):
            wall = _drain(workers, args.ops)
            print(f"  {workers} worker process(es): {wall:.2f} s, {args.ops / wall:.0f} ops/s")
        for api_workers in (1, 2):
            _latency(args.requests, args.clients, api_workers)
    return 0
