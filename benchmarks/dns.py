"""DNS verification benchmark against nsd, beside checkdmarc on the same zones.

    python -m benchmarks dns [--domains 10000] [--repeat 3] [--processes 1,2] [--servers-per 100]
                             [--only generation|sweep]

For each size: generated domains (one inbox each, `--servers-per` domains per server) get their
records from `generate_for_servers` (set-based, all servers in one transaction, as a finishing
run does), interleaved with main's per-server path (`generate_for_server`, a transaction per
server) as the baseline, timed over `--repeat` runs each (the records are deleted between
runs; the tables are ANALYZEd after seeding and after each run, as autovacuum would have); the
zones nsd serves are written from those rows, exactly as a user would publish them. Then,
through a relay that adds 10 ms each way (20 ms round trip; netem is unavailable here),
interleaved `--repeat` times:

- the dns.verify sweep (`verify_due`) with each of `--processes`: wall time including claims and
  database writes, domains per second, DNS queries sent;
- checkdmarc (PyPI, in its own venv `.venv-checkdmarc`, created on first use) on the same zones
  through the same relay, one domain at a time and on `--threads` threads, each for
  `--checkdmarc-seconds` (it is far slower; its rate is measured, the time for all domains
  projected). Every checkdmarc lookup goes to the relay, never the machine's resolver
  (benchmarks/_checkdmarc_run.py).

Figures are min / median over the repetitions, and the ratio of our rate to checkdmarc's.
Database: a scratch database on PENGUINMAILS_BENCH_DATABASE_URL (default the local Postgres at
127.0.0.1:5432), dropped afterwards. Needs nsd (/usr/sbin/nsd).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _dns_relay
from benchmarks._database import scratch_database
from settings import get_settings

RELAY_HOST = "127.0.0.2"
ROOT = Path(__file__).resolve().parents[1]
CHECKDMARC_VENV = ROOT / ".venv-checkdmarc"
CHECKDMARC_RUN = Path(__file__).with_name("_checkdmarc_run.py")


def _seed(n: int, servers_per: int, key: dict[str, str]) -> tuple[Any, list[Any], str, str]:
    from database.models.inboxes import Inbox
    from database.models.mail_domains import MailDomain
    from database.models.servers import VpsServer
    from database.session import session_scope
    from domain.tenants import service as tenants
    from domain.workspaces import service as workspaces
    from domain.workspaces.schemas import WorkspaceCreate

    zone, fleet = f"b{n}.bench", f"fleet{n}.bench"
    octet = 200 + len(str(n))  # one reverse zone per size
    with session_scope() as s:
        tenant = tenants.create_tenant(s, f"bench-{n}")
        ws = workspaces.create(s, tenant.id, WorkspaceCreate(name=f"dns-{n}"))
        servers = []
        for j in range((n + servers_per - 1) // servers_per):
            servers.append(
                VpsServer(
                    tenant_id=tenant.id, workspace_id=ws.id, name=f"mx{j}", provider="existing",
                    size="starter", region="bench", hostname=f"mx{j}.{fleet}",
                    ip_address=f"10.{octet}.{j // 250}.{j % 250 + 1}", status="ready",
                )
            )  # fmt: skip
        s.add_all(servers)
        s.flush()
        for i in range(n):
            domain = f"d{i:05d}.{zone}"
            s.add(
                MailDomain(
                    tenant_id=tenant.id, workspace_id=ws.id, name=domain, dkim_selector="pm1",
                    dkim_algorithm="rsa", dkim_public_key=key["public"],
                    dkim_private_key_encrypted=key["private"],
                )
            )  # fmt: skip
            s.add(
                Inbox(
                    tenant_id=tenant.id, workspace_id=ws.id, email_address=f"u@{domain}",
                    vps_id=servers[i // servers_per].id, status="pending_setup",
                )
            )  # fmt: skip
        s.flush()
        return ws.id, [srv.id for srv in servers], zone, f"{octet}.10.in-addr.arpa"


def _generate(workspace_id: Any, server_ids: list[Any], path: str = "set") -> tuple[float, int]:
    """One generation from scratch: the workspace's records deleted, then every server's
    records written. `set`: `generate_for_servers` for all of them in one transaction, as a
    finishing run that reports them does; `per-server`: main's path, `generate_for_server`
    for each server in its own transaction (the baseline)."""
    from sqlalchemy import text

    from database.models.servers import VpsServer
    from database.session import session_scope
    from domain.dns_records import generation, service

    with session_scope() as s:
        s.execute(
            text("DELETE FROM dns_records WHERE inbox_id IN "
                 "(SELECT id FROM inboxes WHERE workspace_id = :w)"),
            {"w": workspace_id},
        )  # fmt: skip
        s.execute(
            text("UPDATE inboxes SET status = 'pending_setup' WHERE workspace_id = :w"),
            {"w": workspace_id},
        )
    started = time.perf_counter()
    written = 0
    if path == "set":
        with session_scope() as s:
            counts = generation.generate_for_servers(s, server_ids, settings=get_settings())
            written = sum(counts.values())
    else:
        for server_id in server_ids:
            with session_scope() as s:
                written += service.generate_for_server(
                    s, s.get_one(VpsServer, server_id), settings=get_settings()
                )
    seconds = time.perf_counter() - started
    _analyze()  # as autovacuum would after 90,000 inserts, before anything reads them
    return seconds, written


def _analyze() -> None:
    """Table statistics, as autovacuum keeps them on a live database: a scratch database's
    tables are seconds old when they are measured, and a planner that takes a table of 90,000
    rows for an empty one (no statistics, or statistics from before the inserts) scans it once
    per row of another: minutes instead of seconds, for the sweep and for generation alike."""
    from sqlalchemy import text

    from database.session import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _zones(workspace_id: Any, zone: str, reverse: str, fleet: str) -> dict[str, str]:
    from sqlalchemy import select

    from database.models.dns_records import DnsRecord
    from database.models.inboxes import Inbox
    from database.models.servers import VpsServer
    from database.session import session_scope
    from maildns import plan

    out: dict[str, set[str]] = {zone: set(), reverse: set(), fleet: set()}
    with session_scope() as s:
        rows = s.execute(
            select(DnsRecord).join(Inbox, Inbox.id == DnsRecord.inbox_id)
            .where(Inbox.workspace_id == workspace_id)
        ).scalars()  # fmt: skip
        for r in rows:
            p = plan.PlannedRecord(r.purpose, r.record_type, r.record_name, r.record_value,
                                   r.required, 300, r.domain)  # fmt: skip
            out[reverse if r.purpose == plan.PTR else zone].add(p.zone_line())
        for host, ip in s.execute(
            select(VpsServer.hostname, VpsServer.ip_address).where(
                VpsServer.workspace_id == workspace_id
            )
        ):
            out[fleet].add(f"{host}. 300 IN A {ip}")
    return {origin: "\n".join(sorted(lines)) for origin, lines in out.items()}


def _force_due(workspace_id: Any) -> None:
    from sqlalchemy import text

    from database.session import session_scope

    with session_scope() as s:
        s.execute(
            text(
                "UPDATE dns_records SET next_check_at = now() - interval '1 second', "
                "verification_status = 'pending', last_verified_at = NULL WHERE inbox_id IN "
                "(SELECT id FROM inboxes WHERE workspace_id = :w)"
            ),
            {"w": workspace_id},
        )
        s.execute(
            text("UPDATE inboxes SET status = 'dns_pending' WHERE workspace_id = :w"),
            {"w": workspace_id},
        )


def _sweep(nameserver: tuple[str, int], processes: int) -> Any:
    """The sweep as the scheduler runs it: its resolver (and, with several processes, each
    worker's) built from the settings, which name the relay."""
    from scheduler.jobs.dns_verify import verify_due

    settings = get_settings().model_copy(
        update={"dns_nameservers": f"{nameserver[0]}:{nameserver[1]}",
                "dns_verify_processes": processes}
    )  # fmt: skip
    return verify_due(settings)


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (the sweep's helpers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _checkdmarc_python() -> Path | None:
    python = CHECKDMARC_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {CHECKDMARC_VENV} (python -m venv; pip install checkdmarc)")
        subprocess.run([sys.executable, "-m", "venv", str(CHECKDMARC_VENV)], check=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "checkdmarc"])
        if pip.returncode != 0:
            return None
    return python


def _checkdmarc(python: Path, nameserver: tuple[str, int], domains: list[str], threads: int,
                seconds: float) -> float:  # fmt: skip
    """checkdmarc's rate in domains per second over at most `seconds`."""
    done = subprocess.run(
        [str(python), "-I", str(CHECKDMARC_RUN), nameserver[0], str(nameserver[1]),
         str(threads), str(seconds)],
        input="\n".join(domains), capture_output=True, text=True,
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"checkdmarc failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["domains"]) / float(result["seconds"])


def _figures(values: list[float], unit: str, digits: int = 2) -> str:
    return f"min {min(values):,.{digits}f} / median {statistics.median(values):,.{digits}f} {unit}"


def _run_size(nsd: Any, n: int, args: argparse.Namespace, key: dict[str, str],
              relay: tuple[str, int], checkdmarc: Path | None) -> None:  # fmt: skip
    started = time.perf_counter()
    ws, servers, zone, reverse = _seed(n, args.servers_per, key)
    seeded = time.perf_counter() - started
    _analyze()
    print(f"\n== {n:,} domains, {len(servers)} servers (setup {seeded:.1f} s) ==")
    if args.only in (None, "generation"):
        times: dict[str, list[float]] = {"per-server": [], "set": []}
        written = 0
        for rep in range(args.repeat):  # interleaved: main's path, then ours
            for path, spent in times.items():
                seconds, written = _generate(ws, servers, path)
                spent.append(seconds)
                print(f"  [{rep + 1}] generation, {path}: {seconds:.2f} s, {written:,} records")
        best = min(times["set"])
        print(
            f"generate_for_servers, all {len(servers)} servers in one transaction: "
            f"{_figures(times['set'], 's')} ({written / best:,.0f} records/s at best)"
        )
        print(f"generate_for_server per server (main's path): {_figures(times['per-server'], 's')}")
        print(
            f"set-based / per-server: min {best / min(times['per-server']):.2f}x, median "
            f"{statistics.median(times['set']) / statistics.median(times['per-server']):.2f}x"
        )
    if args.only == "generation":
        return
    if args.only == "sweep":
        _generate(ws, servers, "set")
    nsd.publish(_zones(ws, zone, reverse, f"fleet{n}.bench"))
    processes = [int(p) for p in args.processes.split(",")]
    ours: dict[int, list[float]] = {p: [] for p in processes}
    theirs: dict[int, list[float]] = {1: [], args.threads: []}
    domains = [f"d{i:05d}.{zone}" for i in range(n)]
    offset = 0
    for rep in range(args.repeat):
        for p in processes:
            _force_due(ws)
            cpu = _cpu()
            stats = _sweep(relay, p)
            cpu = _cpu() - cpu
            ours[p].append(stats.seconds)
            print(f"  [{rep + 1}] ours, {p} process(es): {stats.seconds:.2f} s "
                  f"({cpu:.1f} s CPU, {cpu / stats.seconds:.2f} cores), "
                  f"{n / stats.seconds:,.0f} domains/s; {stats.claimed:,} checks, "
                  f"{stats.queries:,} queries ({getattr(stats, 'timeouts', '?')} timed out); "
                  f"verified {stats.verified:,}, not verified {stats.not_verified}, errors "
                  f"{stats.errors}; inboxes ready {stats.inboxes_ready:,}; summed over "
                  f"processes: claims {stats.claim_seconds:.1f} s, lookups "
                  f"{stats.check_seconds:.1f} s, writes {stats.write_seconds:.1f} s")  # fmt: skip
        if checkdmarc is None:
            continue
        for threads in theirs:
            # Fresh domains each run, so no run profits from a cache another one filled.
            rate = _checkdmarc(checkdmarc, relay, domains[offset:] + domains[:offset], threads,
                               args.checkdmarc_seconds)  # fmt: skip
            offset = (offset + int(rate * args.checkdmarc_seconds) + 1) % n
            theirs[threads].append(rate)
            print(f"  [{rep + 1}] checkdmarc, {threads} thread(s): {rate:,.1f} domains/s "
                  f"-> {n:,} domains would take {n / rate:,.0f} s")  # fmt: skip
    print(f"-- {n:,} domains at 20 ms RTT, {args.repeat} repetition(s) --")
    for p, seconds in ours.items():
        rates = [n / s for s in seconds]
        line = f"ours, {p} process(es): {_figures(seconds, 's')}; {_figures(rates, 'domains/s', 0)}"
        for threads, their in theirs.items():
            if their:
                ratio = statistics.median(rates) / statistics.median(their)
                line += f"; {ratio:,.1f}x checkdmarc with {threads} thread(s)"
        print(line)
    for threads, their in theirs.items():
        if their:
            print(f"checkdmarc, {threads} thread(s): {_figures(their, 'domains/s', 1)} "
                  f"(projected {n / statistics.median(their):,.0f} s for {n:,})")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--domains", default="10000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--processes", default="1,2", help="sweep processes, comma-separated")
    parser.add_argument("--servers-per", type=int, default=100, help="domains per server")
    parser.add_argument("--threads", type=int, default=32, help="checkdmarc's thread pool")
    parser.add_argument(
        "--checkdmarc-seconds", type=float, default=15.0, help="how long each checkdmarc run lasts"
    )
    parser.add_argument("--no-checkdmarc", action="store_true", help="our sweep only")
    parser.add_argument(
        "--only", choices=("generation", "sweep"), help="measure only record generation (set-based "
        "beside main's per-server path, interleaved) or only the sweeps"
    )  # fmt: skip
    args = parser.parse_args(argv)
    os.environ.setdefault("PENGUINMAILS_LOG_LEVEL", "WARNING")

    from domain.mail_domains.service import generate_dkim_key
    from tests.support.nsd import Nsd, nsd_binaries
    from tests.support.ports import free_port

    binaries = nsd_binaries()
    if binaries is None:
        print("nsd is not installed (apt-get install nsd)")
        return 2
    checkdmarc = None if args.no_checkdmarc or args.only == "generation" else _checkdmarc_python()
    public, private = generate_dkim_key("rsa", 2048)
    key = {"public": public, "private": private}
    with tempfile.TemporaryDirectory() as tmp:
        nsd = Nsd(Path(tmp), binaries)
        nsd.start()
        relay = None
        try:
            listen = (RELAY_HOST, free_port(RELAY_HOST))
            relay = _dns_relay.start(listen, nsd.address, delay=0.010)
            print(f"nsd {nsd.address[0]}:{nsd.address[1]} (rrl off); relay {listen[0]}:"
                  f"{listen[1]} (20 ms RTT); {os.cpu_count()} CPUs; checkdmarc "
                  f"{'off' if checkdmarc is None else checkdmarc}")  # fmt: skip
            with scratch_database():
                for n in (int(x) for x in args.domains.split(",")):
                    _run_size(nsd, n, args, key, listen, checkdmarc)
        finally:
            if relay is not None:
                relay.terminate()
                relay.join(5)
            nsd.stop()
    return 0
