"""DNS verification benchmark against nsd.

    python -m benchmarks dns [--domains 1000,10000] [--servers-per 100] [--no-rtt]

For each size: generated domains (one inbox each, `--servers-per` domains per server) get their
records from `generate_for_server`; the zones nsd serves are written from those rows, exactly as a
user would publish them. Then, on loopback and through a relay that adds 10 ms each way (20 ms
round trip; netem is unavailable here):

- the dns.verify sweep (`verify_due`): wall time including claims and database writes, record
  checks per second, domains per second, DNS queries sent;
- beside it, on the same zones: a plain one-query-at-a-time dnspython loop doing the same lookups
  per domain (run for `--plain-seconds`, then projected), and the raw query rate: our resolver
  without its cache, and bare UDP packets with no parsing, asking for one name over and over.

Database: a scratch database on PENGUINMAILS_BENCH_DATABASE_URL (default the local Postgres at
127.0.0.1:5432), dropped afterwards. Needs nsd (/usr/sbin/nsd).
"""

import argparse
import asyncio
import contextlib
import ipaddress
import os
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.resolver

from benchmarks import _dns_relay
from benchmarks._database import scratch_database
from settings import get_settings

RELAY_HOST = "127.0.0.2"


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


def _generate(server_ids: list[Any]) -> tuple[float, int]:
    from database.models.servers import VpsServer
    from database.session import session_scope
    from domain.dns_records import service

    started = time.perf_counter()
    written = 0
    for server_id in server_ids:
        with session_scope() as s:
            written += service.generate_for_server(
                s, s.get_one(VpsServer, server_id), settings=get_settings()
            )
    return time.perf_counter() - started, written


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


def _sweep(address: tuple[str, int], concurrency: int) -> Any:
    from maildns.resolver import Resolver
    from scheduler.jobs.dns_verify import verify_due

    return verify_due(
        get_settings(),
        resolver_factory=lambda _: Resolver([address], timeout=2.0, concurrency=concurrency),
    )


def _force_due(workspace_id: Any) -> None:
    from sqlalchemy import text

    from database.session import session_scope

    with session_scope() as s:
        s.execute(
            text(
                "UPDATE dns_records SET next_check_at = now() - interval '1 second', "
                "verification_status = 'pending' WHERE inbox_id IN "
                "(SELECT id FROM inboxes WHERE workspace_id = :w)"
            ),
            {"w": workspace_id},
        )
        s.execute(
            text("UPDATE inboxes SET status = 'dns_pending' WHERE workspace_id = :w"),
            {"w": workspace_id},
        )


def _plain(address: tuple[str, int], n: int, zone: str, seconds: float) -> tuple[int, int, float]:
    """One query at a time, the way a simple checker loops over domains."""
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port, r.lifetime, r.cache = [address[0]], address[1], 3.0, None
    domains = queries = 0
    started = time.perf_counter()
    while domains < n and time.perf_counter() - started < seconds:
        d = f"d{domains:05d}.{zone}"
        for name, rtype in ((d, "MX"), (d, "TXT"), (f"pm1._domainkey.{d}", "TXT"),
                            (f"_dmarc.{d}", "TXT"), (f"_mta-sts.{d}", "TXT"),
                            (f"_smtp._tls.{d}", "TXT"), (f"_submissions._tcp.{d}", "SRV"),
                            (f"_imaps._tcp.{d}", "SRV")):  # fmt: skip
            answer = r.resolve(name, rtype, raise_on_no_answer=False)
            queries += 1
            if rtype == "MX":
                host = str(next(iter(answer)).exchange)
                ip = str(next(iter(r.resolve(host, "A"))))
                ptr = str(next(iter(r.resolve(ipaddress.ip_address(ip).reverse_pointer, "PTR"))))
                r.resolve(ptr, "A")
                queries += 3
        domains += 1
    return domains, queries, time.perf_counter() - started


async def _resolver_rate(address: tuple[str, int], name: str, count: int) -> float:
    from maildns.resolver import Resolver

    async with Resolver([address], cache=False, concurrency=500, timeout=3.0) as r:
        started = time.perf_counter()
        await asyncio.gather(*(r.query(name, "TXT") for _ in range(count)))
        return count / (time.perf_counter() - started)


async def _raw_rate(address: tuple[str, int], name: str, seconds: float, window: int) -> float:
    """Bare datagrams, no parsing: keeps `window` queries in flight, counts replies."""
    loop = asyncio.get_running_loop()
    wire = bytearray(dns.message.make_query(name, "TXT").to_wire())
    state = {"sent": 0, "got": 0}
    done = loop.create_future()
    deadline = time.perf_counter() + seconds

    class Blaster(asyncio.DatagramProtocol):
        transport: asyncio.DatagramTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.DatagramTransport, transport)
            for _ in range(window):
                self.send()

        def send(self) -> None:
            state["sent"] += 1
            wire[0:2] = (state["sent"] & 0xFFFF).to_bytes(2, "big")
            self.transport.sendto(bytes(wire))

        def datagram_received(self, data: bytes, addr: Any) -> None:
            state["got"] += 1
            if time.perf_counter() < deadline:
                self.send()
            elif not done.done():
                done.set_result(None)

    transport, _ = await loop.create_datagram_endpoint(Blaster, remote_addr=address)
    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done, seconds + 5)
    elapsed = time.perf_counter() - started
    transport.close()
    return state["got"] / elapsed


def _run_size(nsd: Any, n: int, args: argparse.Namespace, key: dict[str, str],
              paths: dict[str, tuple[str, int]]) -> None:  # fmt: skip
    started = time.perf_counter()
    ws, servers, zone, reverse = _seed(n, args.servers_per, key)
    seeded = time.perf_counter() - started
    gen_seconds, written = _generate(servers)
    zones = _zones(ws, zone, reverse, f"fleet{n}.bench")
    t = time.perf_counter()
    nsd.publish(zones)
    print(f"\n== {n:,} domains, {written:,} records, {len(servers)} servers ==")
    print(f"setup {seeded:.1f} s; generate_for_server {gen_seconds:.2f} s "
          f"({written / gen_seconds:,.0f} records/s); zones loaded in "
          f"{time.perf_counter() - t:.1f} s")  # fmt: skip
    for label, address in paths.items():
        _force_due(ws)
        stats = _sweep(address, args.concurrency)
        print(f"[{label}] sweep: {stats.seconds:.2f} s wall incl. DB writes, "
              f"{stats.claimed:,} record checks = {stats.claimed / stats.seconds:,.0f} checks/s, "
              f"{n / stats.seconds:,.0f} domains/s; {stats.queries:,} DNS queries "
              f"({stats.queries / stats.seconds:,.0f}/s); verified {stats.verified:,}, "
              f"not verified {stats.not_verified}, errors {stats.errors}; "
              f"inboxes ready {stats.inboxes_ready:,}; claim {stats.claim_seconds:.2f} s, "
              f"lookups {stats.check_seconds:.2f} s, writes {stats.write_seconds:.2f} s "
              f"(overlapping the next batch's lookups)")  # fmt: skip
        seconds = args.plain_seconds * (2 if label != "loopback" else 1)
        domains, queries, elapsed = _plain(address, n, zone, seconds)
        rate = domains / elapsed
        print(f"[{label}] plain dnspython loop: {rate:,.1f} domains/s ({queries / elapsed:,.0f} "
              f"queries/s, {domains} domains in {elapsed:.1f} s) -> {n:,} domains would take "
              f"{n / rate:,.0f} s")  # fmt: skip
        probe = f"d00000.{zone}"
        resolver_rate = asyncio.run(_resolver_rate(address, probe, args.raw_queries))
        raw = asyncio.run(_raw_rate(address, probe, 3.0, args.window))
        print(f"[{label}] raw query rate, one name: our resolver (no cache) "
              f"{resolver_rate:,.0f} q/s; bare UDP, no parsing, {args.window} in flight "
              f"{raw:,.0f} q/s")  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dns",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--domains", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--servers-per", type=int, default=100, help="domains per server")
    parser.add_argument("--concurrency", type=int, default=256, help="DNS queries in flight")
    parser.add_argument(
        "--plain-seconds",
        type=float,
        default=5.0,
        help="how long the one-at-a-time loop runs (twice that with RTT)",
    )
    parser.add_argument("--raw-queries", type=int, default=20000)
    parser.add_argument("--window", type=int, default=200, help="bare UDP queries in flight")
    parser.add_argument("--no-rtt", action="store_true", help="loopback only")
    args = parser.parse_args(argv)
    os.environ.setdefault("PENGUINMAILS_LOG_LEVEL", "WARNING")

    from domain.mail_domains.service import generate_dkim_key
    from tests.support.nsd import Nsd, nsd_binaries
    from tests.support.ports import free_port

    binaries = nsd_binaries()
    if binaries is None:
        print("nsd is not installed (apt-get install nsd)")
        return 2
    public, private = generate_dkim_key("rsa", 2048)
    key = {"public": public, "private": private}
    with tempfile.TemporaryDirectory() as tmp:
        nsd = Nsd(Path(tmp), binaries)
        nsd.start()
        relay = None
        try:
            paths = {"loopback": nsd.address}
            if not args.no_rtt:
                listen = (RELAY_HOST, free_port(RELAY_HOST))
                relay = _dns_relay.start(listen, nsd.address, delay=0.010)
                paths["20 ms RTT"] = listen
            print(f"nsd {nsd.address[0]}:{nsd.address[1]} (rrl off); relay "
                  f"{paths.get('20 ms RTT', 'off')}; {os.cpu_count()} CPUs")  # fmt: skip
            with scratch_database():
                for n in (int(x) for x in args.domains.split(",")):
                    _run_size(nsd, n, args, key, paths)
        finally:
            if relay is not None:
                relay.terminate()
                relay.join(5)
            nsd.stop()
    return 0
