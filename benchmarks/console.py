"""Server-side render time of the console's workspace page for a large fleet, beside two
baselines measured in the same run on the same data:

    python -m benchmarks console [--servers 500] [--inboxes 5000] [--domains 50] [--runs 30]

A scratch Postgres database (benchmarks/_database.py) gets one workspace with `--servers`
servers (six health check states each), `--inboxes` inboxes spread over `--domains` domains and
servers, and twelve DNS records per inbox. Timed in-process through the ASGI app (no network):

- console: `GET /console/workspaces/{id}` signed in (authentication, the page's reads through
  the domain services, the Jinja render), first page and a middle page of the inboxes;
- api-json: the API's JSON lists of the same rows (`GET .../vps?limit=50` plus
  `GET .../inboxes?limit=50`), what a client-side page would fetch;
- jinja-minimal: the same 50 + 50 rows, already loaded, through a minimal Jinja table (the
  template cost alone).

Tables page at PENGUINMAILS_CONSOLE_PAGE_SIZE rows (default 50); the last figure renders the
whole inbox table unpaged in the minimal template, to show why the page is paged. Figures are
printed, never asserted."""

import argparse
import re
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from benchmarks._database import scratch_database


def _seed(servers: int, inboxes: int, domains: int) -> tuple[str, uuid.UUID]:
    from database.models.dns_records import DnsRecord
    from database.models.health import HealthCheckState
    from database.models.inboxes import Inbox
    from database.models.mail_domains import MailDomain
    from database.models.servers import VpsServer
    from database.session import session_scope
    from domain.tenants import service as tenants
    from domain.workspaces import service as workspaces
    from domain.workspaces.schemas import WorkspaceCreate
    from kit.time import utcnow
    from probes.types import Check

    now = utcnow()
    with session_scope() as session:
        tenant = tenants.create_tenant(session, "bench")
        key = tenants.issue_key(session, tenant).plaintext
        workspace = workspaces.create(session, tenant.id, WorkspaceCreate(name="big", sandbox=True))
        tid, wid = tenant.id, workspace.id
        fleet = [
            VpsServer(
                id=uuid.uuid4(),
                tenant_id=tid,
                workspace_id=wid,
                name=f"srv-{i:04d}",
                provider="hetzner",
                size="starter",
                region="eu-central",
                hostname=f"mail-{i:04d}.fleet.example",
                ip_address=f"198.51.{i // 250}.{i % 250 + 1}",
                status="ready" if i % 20 else "unreachable",
                mail_server_status="running",
                ssl_certificate_expires=now + timedelta(days=60),
            )
            for i in range(servers)
        ]
        session.add_all(fleet)
        session.flush()
        names = [f"d{d:03d}.bench.example" for d in range(domains)]
        session.add_all(
            MailDomain(
                tenant_id=tid,
                workspace_id=wid,
                name=name,
                dkim_selector="pm1",
                dkim_public_key="MIIB",
                dkim_private_key_encrypted="-",
            )
            for name in names
        )
        session.add_all(
            HealthCheckState(
                vps_id=s.id,
                check=c.value,
                tenant_id=tid,
                status="ok" if (i + j) % 17 else "warning",
                detail=f"{c.value} fine",
                checked_at=now,
                status_since=now,
            )
            for i, s in enumerate(fleet)
            for j, c in enumerate(Check)
        )
        session.flush()
        boxes = [
            Inbox(
                id=uuid.uuid4(),
                tenant_id=tid,
                workspace_id=wid,
                email_address=f"user{i:05d}@{names[i % domains]}",
                display_name=f"User {i}",
                vps_id=fleet[i % servers].id,
                status="ready" if i % 7 else "dns_pending",
                daily_send_limit=50,
            )
            for i in range(inboxes)
        ]
        session.add_all(boxes)
        session.flush()
        purposes = ("mx", "a", "aaaa", "spf", "dkim", "dmarc", "ptr", "mta_sts", "tls_rpt")
        session.add_all(
            DnsRecord(
                inbox_id=b.id,
                domain=b.email_address.rpartition("@")[2],
                record_type="TXT",
                record_name=f"{p}{k}",
                record_value="v=spf1 ip4:198.51.0.1 -all",
                verification_status="verified" if (i + k) % 5 else "missing",
                purpose=p,
                required=p not in ("mta_sts", "tls_rpt"),
            )
            for i, b in enumerate(boxes)
            for k, p in enumerate((*purposes, "srv_submission", "srv_imaps", "autoconfig"))
        )
    from sqlalchemy import text

    from database.session import get_engine

    # As autovacuum would have by now: planner statistics for the bulk-loaded tables.
    with get_engine().connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return key, wid


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm: templates compiled, connections in the pool
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


MINIMAL = """<table>{% for s in servers %}<tr><td>{{ s.name }}</td><td>{{ s.hostname }}</td>
<td>{{ s.ip_address }}</td><td>{{ s.status }}</td></tr>{% endfor %}</table>
<table>{% for i in inboxes %}<tr><td>{{ i.email_address }}</td><td>{{ i.status }}</td>
<td>{{ i.daily_send_limit }}</td></tr>{% endfor %}</table>"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks console")
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--inboxes", type=int, default=5000)
    parser.add_argument("--domains", type=int, default=50)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)

    with scratch_database():
        from fastapi.testclient import TestClient
        from jinja2 import Environment

        from cli.web import create_app
        from database.session import session_scope
        from domain.inboxes import service as inboxes
        from domain.inboxes.schemas import InboxRead
        from domain.servers import service as servers
        from settings import get_settings

        started = time.perf_counter()
        key, wid = _seed(args.servers, args.inboxes, args.domains)
        seeded = time.perf_counter() - started
        size = get_settings().console_page_size
        client = TestClient(create_app())
        page = client.get("/console/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        signed = client.post(
            "/console/sign-in",
            data={"api_key": key, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        url = f"/console/workspaces/{wid}"
        first = client.get(url)
        assert first.status_code == 200 and f"({args.inboxes})" in first.text
        middle = args.inboxes // size // 2 + 1
        auth = {"Authorization": f"Bearer {key}"}

        def api_json() -> None:
            for path in (f"/api/v1/workspaces/{wid}/vps", f"/api/v1/workspaces/{wid}/inboxes"):
                assert client.get(path, params={"limit": size}, headers=auth).status_code == 200

        with session_scope() as session:
            from domain.workspaces import service as workspaces

            tid = workspaces.lock_by_id(session, wid).tenant_id  # type: ignore[union-attr]
            fleet, _ = servers.list_page(session, tid, wid, limit=size, offset=0)
            boxes, _ = inboxes.list_page(session, tid, wid, limit=size, offset=0)
            every, _ = inboxes.list_page(session, tid, wid, limit=args.inboxes, offset=0)
            server_rows = [
                {
                    "name": s.name,
                    "hostname": s.hostname,
                    "ip_address": s.ip_address,
                    "status": s.status,
                }
                for s in fleet
            ]
            page_rows = [InboxRead.model_validate(i) for i in boxes]
            all_rows = [InboxRead.model_validate(i) for i in every]
        minimal = Environment(autoescape=True).from_string(MINIMAL)

        figures = [
            ("console workspace page, inboxes page 1", lambda: client.get(url)),
            (
                f"console workspace page, inboxes page {middle}",
                lambda: client.get(url, params={"inboxes": middle}),
            ),
            ("baseline api-json: vps + inboxes lists, same rows", api_json),
            (
                "baseline jinja-minimal: same rows, loaded",
                lambda: minimal.render(servers=server_rows, inboxes=page_rows),
            ),
            (
                f"unpaged: all {args.inboxes} inboxes, jinja-minimal",
                lambda: minimal.render(servers=server_rows, inboxes=all_rows),
            ),
        ]
        print(
            f"fleet: {args.servers} servers, {args.inboxes} inboxes, {args.domains} domains, "
            f"{args.inboxes * 12} DNS records (seeded in {seeded:.1f} s); page size {size}; "
            f"{args.runs} runs each"
        )
        print(f"{'what':<52} {'median ms':>10} {'p95 ms':>9}")
        for name, fn in figures:
            median, p95 = _time(fn, args.runs)
            print(f"{name:<52} {median:>10.1f} {p95:>9.1f}")
        print(f"page bytes: {len(first.content):,} (paged)")
    return 0
