"""The `inbox.warmup` sweep (warmup, caps and reputation) over a large fleet, beside the health
sweep it follows.

    python -m benchmarks reputation [--inboxes 10000] [--servers 1000] [--workspaces 100]
                                    [--samples-per-day 96]

A scratch Postgres (benchmarks/_database.py) gets the fleet: `--workspaces` workspaces sharing
`--servers` servers and `--inboxes` inboxes evenly, a third of them warming, each server with
the seven health states a `monitoring.health` sweep leaves (one server in 50 listed, one in 20
with a warning), `--samples-per-day` `delivery` check results over the last 24 h (the server's
own counters, read for the bounce and deferral rates; one server in 25 bouncing 5%) and each
inbox with its SPF/DKIM/DMARC/PTR records (one in 10 with DMARC missing). `--samples-per-day 0`
is the workload without delivery counters, for a baseline in the same run. Then the sweep runs
as the scheduler runs it: first pass (every cap and score new:
writes and history rows), a second pass at the same time (nothing changes: reads only), and a
pass a day later (the warming third advances). Compare with `python -m benchmarks health`, the
sweep whose results this one reads (22.1 s for 1,000 servers with its database writes)."""

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from benchmarks._database import scratch_database

CHECKS = ("reachable", "mail_server", "tls", "disk", "queue", "dnsbl", "delivery")


def populate(inboxes: int, servers: int, workspaces: int, now: datetime, samples: int) -> None:
    from database.models.dns_records import DnsRecord
    from database.models.health import HealthCheckResult, HealthCheckState
    from database.models.inboxes import Inbox
    from database.models.servers import VpsServer
    from database.session import session_scope
    from tests.support.factories import create_tenant, create_workspace

    with session_scope() as s:
        tenant = create_tenant(s)
        spaces = [create_workspace(s, tenant) for _ in range(workspaces)]
        tenant_id = tenant.id
        space_ids = [w.id for w in spaces]
    server_rows, state_rows, sample_rows = [], [], []
    for i in range(servers):
        sid = uuid.uuid4()
        server_rows.append(
            {
                "id": sid,
                "tenant_id": tenant_id,
                "workspace_id": space_ids[i % workspaces],
                "name": f"mx{i}",
                "provider": "hetzner",
                "size": "starter",
                "region": "eu-central",
                "hostname": f"mx{i}.bench.example",
                "ip_address": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
                "status": "ready",
            }
        )
        for check in CHECKS:
            status = "ok"
            if check == "dnsbl" and i % 50 == 0:
                status = "critical"
            elif check == "disk" and i % 20 == 0:
                status = "warning"
            state_rows.append(
                {
                    "vps_id": sid,
                    "check": check,
                    "tenant_id": tenant_id,
                    "status": status,
                    "detail": "bench",
                    "data": {},
                    "checked_at": now,
                    "status_since": now,
                }
            )
        for k in range(samples):  # every 24 h / samples, oldest first, counters rising
            sample_rows.append(
                {
                    "tenant_id": tenant_id,
                    "vps_id": sid,
                    "check": "delivery",
                    "status": "ok",
                    "detail": "bench",
                    "data": {
                        "delivered": 40 * k,
                        "bounced": 2 * k if i % 25 == 0 else k // 10,
                        "deferred": k // 5,
                    },
                    "checked_at": now - timedelta(days=1) * (samples - k) / samples,
                }
            )
    inbox_rows, record_rows = [], []
    for j in range(inboxes):
        iid = uuid.uuid4()
        server = server_rows[j % servers]
        inbox_rows.append(
            {
                "id": iid,
                "tenant_id": tenant_id,
                "workspace_id": server["workspace_id"],
                "email_address": f"user{j}@d{j // 5}.bench.example",
                "vps_id": server["id"],
                "status": "ready",
                "warmup_enabled": j % 3 == 0,
                "warmup_status": "in_progress" if j % 3 == 0 else "not_started",
                "warmup_started_at": now - timedelta(days=j % 20) if j % 3 == 0 else None,
                "warmup_day": 0,
                "warmup_paused_seconds": 0,
                "password_encrypted": "bench-password-0123",
            }
        )
        for purpose in ("spf", "dkim", "dmarc", "ptr"):
            missing = purpose == "dmarc" and j % 10 == 0
            record_rows.append(
                {
                    "inbox_id": iid,
                    "domain": f"d{j // 5}.bench.example",
                    "record_type": "TXT",
                    "record_name": f"{purpose}.d{j // 5}.bench.example",
                    "record_value": "v",
                    "purpose": purpose,
                    "verification_status": "missing" if missing else "verified",
                }
            )
    with session_scope() as s:
        s.execute(insert(VpsServer), server_rows)
        s.execute(insert(HealthCheckState), state_rows)
        for k in range(0, len(inbox_rows), 5000):
            s.execute(insert(Inbox), inbox_rows[k : k + 5000])
        for k in range(0, len(record_rows), 10000):
            s.execute(insert(DnsRecord), record_rows[k : k + 10000])
        for k in range(0, len(sample_rows), 10000):
            s.execute(insert(HealthCheckResult), sample_rows[k : k + 10000])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks reputation")
    parser.add_argument("--inboxes", type=int, default=10000)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--workspaces", type=int, default=100)
    parser.add_argument("--samples-per-day", type=int, default=96)
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(microsecond=0)
    with scratch_database():
        from database.models.warmup import ReputationSnapshot
        from database.session import session_scope
        from scheduler.jobs import inbox_warmup
        from settings import get_settings

        started = time.perf_counter()
        populate(args.inboxes, args.servers, args.workspaces, now, args.samples_per_day)
        print(
            f"fleet: {args.inboxes} inboxes on {args.servers} servers in {args.workspaces} "
            f"workspaces, {args.samples_per_day} delivery samples a day per server, written in "
            f"{time.perf_counter() - started:.1f} s"
        )
        settings = get_settings()
        for label, at in (
            ("first pass (every cap and score new)", now),
            ("second pass, same time (nothing changes)", now),
            ("a day later (warming inboxes advance)", now + timedelta(days=1)),
        ):
            started = time.perf_counter()
            report = inbox_warmup.run(settings, now=at)
            seconds = time.perf_counter() - started
            print(
                f"{label}: {seconds:.2f} s ({args.inboxes / seconds:,.0f} inboxes/s), "
                f"{report.changed_limits} caps and {report.reputation_changed} scores changed, "
                f"{report.events} events, {len(report.failed_workspaces)} workspaces failed"
            )
        with session_scope() as s:
            rows = s.scalar(select(func.count()).select_from(ReputationSnapshot))
        print(f"reputation history rows: {rows}")
    return 0
