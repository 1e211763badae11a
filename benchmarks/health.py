"""The monitoring.health sweep over a simulated fleet on loopback, beside a one-server-at-a-time
loop measured in the same run.

    python -m benchmarks health [--servers 1000] [--repeat 3] [--timeout 5] [--concurrency 500]
                                [--serial-sample 40] [--no-db]

A child process serves the fleet: server i lives on 127.1.(i // 250).(i % 250 + 1) with SSH
(asyncssh, answers `df`), SMTP (220 + EHLO with STARTTLS), TLS on the HTTPS/submissions/IMAPS
ports (HTTP /healthz/ready and the queue API on HTTPS; any other path, /metrics/prometheus
included, answers 200 with an empty body: zero delivery counters) and a DNS server for the DNSBL
zone. The mix:
50% healthy, 20% slow (SMTP banner and HTTP answers 1-2 s late), 20% dead (nothing listens:
refused), 10% hung (accept, never answer: each check runs into the timeout). The sweep runs as the
scheduler runs it (`scheduler.jobs.monitoring_health.run`: probes, blocklists, and results,
states and alerts written to a scratch Postgres while the probes go on, see
benchmarks/_database.py); `--no-db` times the probe phase only. The serial loop probes a sample
with the same mix one server at a time and is extrapolated to the fleet. The three are
interleaved `--repeat` times (the machine's other load drifts) and each is printed as min and
median, the ratios beside them computed repetition by repetition."""

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import random
import resource
import secrets
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PORTS = {"ssh": 30022, "smtp": 30025, "https": 30443, "submissions": 30465, "imaps": 30993}
DNS_PORT = 30053
ADMIN_PASSWORD = secrets.token_urlsafe(16)
ZONE = "zen.bench.test"
KINDS = ("healthy", "slow", "dead", "hung")
WEIGHTS = (50, 20, 20, 10)


def address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


def kind_of(i: int) -> str:
    # Deterministic mix, spread over the fleet so every batch sees every kind.
    slot = (i * 37) % 100
    bound = 0
    for kind, weight in zip(KINDS, WEIGHTS, strict=True):
        bound += weight
        if slot < bound:
            return kind
    return KINDS[0]


# --- the pki ----------------------------------------------------------------------------------


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and one wildcard certificate for *.bench.test (EC P-256: cheap handshakes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("bench root"))
        .issuer_name(name("bench root"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name("*.bench.test"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=60))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("*.bench.test")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# --- the fleet (child process) ----------------------------------------------------------------

DF = (
    "Filesystem 1B-blocks Used Available Capacity Mounted on\n"
    "/dev/sda1 100000000000 40000000000 60000000000 40% /var/lib/stalwart\n"
)


async def _serve_fleet(n: int, leaf: Path, key: Path, authorized: str, ready: Any) -> None:
    import ssl

    import asyncssh
    import dns.message
    import dns.rcode
    import dns.rrset

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(leaf, key)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    authorized_keys = asyncssh.import_authorized_keys(authorized)
    servers: list[Any] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    def smtp(hostname: str, delay: float) -> Any:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await asyncio.sleep(delay)
                writer.write(f"220 {hostname} ESMTP\r\n".encode())
                await reader.readline()
                writer.write(f"250-{hostname}\r\n250-STARTTLS\r\n250 SIZE 10000000\r\n".encode())
                await reader.readline()
                writer.write(b"221 bye\r\n")
                await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        return handler

    def https(delay: float) -> Any:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # HTTP/1.1 keep-alive, as Stalwart serves it: requests answered in turn on one
            # connection until the client closes it (the probes keep one per server).
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if length:
                        await reader.readexactly(length)
                    await asyncio.sleep(delay)
                    path = head.split(b" ", 2)[1]
                    body = b'{"data":{"items":[],"total":0}}' if path.startswith(b"/api/") else b""
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    await writer.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        return handler

    def greeter(greeting: bytes) -> Any:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(greeting)
                await writer.drain()
                await reader.read()
            except OSError:
                pass
            finally:
                writer.close()

        return handler

    def process(proc: Any) -> None:
        proc.stdout.write(DF if (proc.command or "").startswith("df ") else "")
        proc.exit(0)

    for i in range(n):
        kind, addr = kind_of(i), address(i)
        hostname = f"mx{i}.bench.test"
        if kind == "dead":
            continue
        if kind == "hung":
            for port in PORTS.values():
                servers.append(await asyncio.start_server(hang, addr, port))
            continue
        delay = random.uniform(1.0, 2.0) if kind == "slow" else 0.0
        servers.append(
            await asyncssh.create_server(
                asyncssh.SSHServer,
                addr,
                PORTS["ssh"],
                server_host_keys=[host_key],
                authorized_client_keys=authorized_keys,
                process_factory=process,
            )
        )
        servers.append(await asyncio.start_server(smtp(hostname, delay), addr, PORTS["smtp"]))
        servers.append(await asyncio.start_server(https(delay), addr, PORTS["https"], ssl=ctx))
        for port, greeting in (
            (PORTS["submissions"], f"220 {hostname} ESMTP\r\n".encode()),
            (PORTS["imaps"], b"* OK ready\r\n"),
        ):
            servers.append(await asyncio.start_server(greeter(greeting), addr, port, ssl=ctx))

    class Dns(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            name = query.question[0].name.to_text()
            if name == f"2.0.0.127.{ZONE}.":  # the RFC 5782 test entry: a list in working order
                response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "127.0.0.2"))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.transport.sendto(response.to_wire(), addr)

    await asyncio.get_running_loop().create_datagram_endpoint(
        Dns, local_addr=("127.0.0.1", DNS_PORT)
    )
    ready.set()
    await asyncio.Event().wait()


def _fleet_main(n: int, leaf: str, key: str, authorized: str, ready: Any) -> None:
    _raise_fd_limit()
    asyncio.run(_serve_fleet(n, Path(leaf), Path(key), authorized, ready))


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- the run ----------------------------------------------------------------------------------


def _keypair() -> tuple[str, str]:
    from kit.sshkeys import new_keypair

    return new_keypair()


def _statuses(results: dict[str, list[Any]]) -> str:
    counts = Counter(r.status.value for rs in results.values() for r in rs)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _cpu(fleet_pid: int | None) -> tuple[float, float, float]:
    """CPU seconds so far: this process, its ended children (the probe processes) and the
    simulated fleet (which shares the machine's cores with the probes)."""
    import psutil

    me = resource.getrusage(resource.RUSAGE_SELF)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    fleet = psutil.Process(fleet_pid).cpu_times() if fleet_pid else None
    return (
        me.ru_utime + me.ru_stime,
        ended.ru_utime + ended.ru_stime,
        fleet.user + fleet.system if fleet else 0.0,
    )


def _cpu_spent(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    parent, probes, fleet = (a - b for a, b in zip(after, before, strict=True))
    return (
        f"this process {parent:.1f}, probe processes {probes:.1f}, simulated fleet {fleet:.1f}"
        f" (all {parent + probes + fleet:.1f})"
    )


def _by_kind(finished: dict[str, float]) -> str:
    """When each kind's servers were done: where the sweep's tail comes from."""
    kinds: dict[str, list[float]] = {}
    for key, seconds in finished.items():
        kinds.setdefault(kind_of(int(key)), []).append(seconds)
    return "; ".join(
        f"{kind} median {statistics.median(v):.1f} max {max(v):.1f}"
        for kind, v in sorted(kinds.items())
    )


def _spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return f"min {min(values):.{digits}f}{unit} median {statistics.median(values):.{digits}f}{unit}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks health")
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-check timeout (s)")
    parser.add_argument("--concurrency", type=int, default=500, help="checks in flight")
    parser.add_argument("--serial-sample", type=int, default=40)
    parser.add_argument("--no-db", action="store_true", help="probe phase only, no Postgres")
    parser.add_argument(
        "--processes", type=int, default=2, help="probe processes (health_probe_processes)"
    )
    args = parser.parse_args(argv)

    from probes.runner import probe_server
    from probes.shards import probe_sharded
    from probes.types import Nameserver, ProbeConfig, Target

    fds = _raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="pm-bench-health-"))
    ca, leaf, key = make_pki(tmp)
    public, private = _keypair()
    ready = mp.get_context("fork").Event()
    child = mp.get_context("fork").Process(
        target=_fleet_main, args=(args.servers, str(leaf), str(key), public, ready), daemon=True
    )
    started = time.perf_counter()
    child.start()
    if not ready.wait(300):
        print("the simulated fleet did not start")
        child.kill()
        return 1
    mix = Counter(kind_of(i) for i in range(args.servers))
    print(
        f"fleet: {args.servers} servers on loopback ({', '.join(f'{k} {mix[k]}' for k in KINDS)}),"
        f" started in {time.perf_counter() - started:.1f}s; fd limit {fds}"
    )
    config = ProbeConfig(
        smtp_port=PORTS["smtp"],
        submissions_port=PORTS["submissions"],
        imaps_port=PORTS["imaps"],
        https_port=PORTS["https"],
        ca_bundle=ca,
        timeout=args.timeout,
        concurrency=args.concurrency,
        ssh_connect_timeout=args.timeout,
        dnsbl_zones=(ZONE,),
        dnsbl_nameservers=(Nameserver("127.0.0.1", DNS_PORT),),
    )
    targets = [
        Target(
            key=str(i),
            address=address(i),
            hostname=f"mx{i}.bench.test",
            ssh_port=PORTS["ssh"],
            ssh_private_key=private,
            admin_password=ADMIN_PASSWORD,
        )
        for i in range(args.servers)
    ]
    checks_per_server = len(config.checks)
    print(
        f"checks per server: {checks_per_server}; timeout {args.timeout:g}s; "
        f"concurrency {args.concurrency}; {args.processes} probe processes; "
        f"{args.repeat} interleaved repetitions"
    )
    sample = targets[: args.serial_sample]
    probes: list[float] = []
    sweeps: list[float] = []
    serial: list[float] = []  # extrapolated to the fleet
    try:
        with _sweeper(args, config, public, private) as sweep:
            for rep in range(1, args.repeat + 1):
                cpu0 = _cpu(child.pid)
                t0 = time.perf_counter()
                results: dict[str, list[Any]] = {}
                finished: dict[str, float] = {}

                def done(
                    key: str,
                    checks: list[Any],
                    t0: float = t0,
                    results: dict[str, list[Any]] = results,
                    finished: dict[str, float] = finished,
                ) -> None:
                    results[key] = checks
                    finished[key] = time.perf_counter() - t0

                probe_sharded(targets, config, datetime.now(UTC), done, args.processes)
                probes.append(time.perf_counter() - t0)
                print(f"  servers done after (s), by kind: {_by_kind(finished)}")
                print(f"  CPU of the probes (s): {_cpu_spent(cpu0, _cpu(child.pid))}")
                line = f"[{rep}] concurrent probes {probes[-1]:.2f}s [{_statuses(results)}]"
                if sweep is not None:
                    sweeps.append(sweep())
                    line += f"; full sweep {sweeps[-1]:.2f}s"
                t0 = time.perf_counter()
                for t in sample:
                    asyncio.run(probe_server(t, replace(config, concurrency=checks_per_server * 3)))
                serial.append((time.perf_counter() - t0) / len(sample) * args.servers)
                print(f"{line}; serial loop {serial[-1] / args.servers:.2f}s/server", flush=True)
        n = args.servers
        print(
            f"concurrent probes: {n} servers {_spread(probes)} "
            f"({n * checks_per_server / min(probes):.0f} checks/s at best); "
            f"{_spread([s / p for s, p in zip(serial, probes, strict=True)], 'x', 0)} "
            "faster than the serial loop"
        )
        if sweeps:
            print(
                f"full sweep (probes + blocklists + history, states, alerts in Postgres): "
                f"{_spread(sweeps)}; "
                f"{_spread([s / w for s, w in zip(serial, sweeps, strict=True)], 'x', 0)} "
                "faster than the serial loop"
            )
        print(
            f"one server at a time: {_spread([s / n for s in serial])} per server "
            f"(a sample of {len(sample)}), extrapolated to {n}: {_spread(serial, 's', 0)}"
        )
    finally:
        child.kill()
        child.join()
    return 0


@contextlib.contextmanager
def _sweeper(
    args: argparse.Namespace, config: Any, public: str, private: str
) -> Iterator[Callable[[], float] | None]:
    """A function running one full sweep and answering its seconds, over a scratch database
    holding the fleet's servers (None with `--no-db`)."""
    if args.no_db:
        yield None
        return
    from benchmarks._database import scratch_database

    with scratch_database():
        from sqlalchemy import func, select

        from database.models.health import HealthCheckResult
        from database.models.servers import VpsServer
        from database.session import session_scope
        from domain.tenants import service as tenants
        from domain.workspaces import service as workspaces
        from domain.workspaces.schemas import WorkspaceCreate
        from scheduler.jobs import monitoring_health
        from settings import get_settings

        with session_scope() as s:
            tenant = tenants.create_tenant(s, "bench")
            ws = workspaces.create(s, tenant.id, WorkspaceCreate(name="bench", sandbox=False))
            ws.ssh_public_key, ws.ssh_private_key_encrypted = public, private
            ws.stalwart_admin_password_encrypted = ADMIN_PASSWORD
            s.add_all(
                VpsServer(
                    tenant_id=tenant.id,
                    workspace_id=ws.id,
                    name=f"mx{i}",
                    provider="existing",
                    size="starter",
                    region="eu-central",
                    hostname=f"mx{i}.bench.test",
                    ip_address=address(i),
                    status="ready",
                    mail_server_status="running",
                    ssh_port=PORTS["ssh"],
                )
                for i in range(args.servers)
            )
        settings = get_settings().model_copy(update={"health_probe_processes": args.processes})

        def sweep() -> float:
            started_at = datetime.now(UTC) - timedelta(seconds=1)
            t0 = time.perf_counter()
            report = monitoring_health.run(settings, config)
            elapsed = time.perf_counter() - t0
            assert report.servers == args.servers and not report.failed_servers, report
            with session_scope() as s:
                # Beyond what the mix gives (dead and hung: 4 unknown checks each), by check:
                # timeouts a loaded machine caused, not the servers.
                extra = s.execute(
                    select(HealthCheckResult.check, func.count())
                    .join(VpsServer, VpsServer.id == HealthCheckResult.vps_id)
                    .where(HealthCheckResult.status == "unknown")
                    .where(HealthCheckResult.checked_at >= started_at)
                    .group_by(HealthCheckResult.check)
                ).all()
            print(f"  unknown results by check: {dict(extra)}", flush=True)
            print(
                f"  sweep report: {report.servers} servers, {report.checks} checks in "
                f"{report.batches} batches, {report.alerts} alert events, "
                f"statuses {report.statuses}",
                flush=True,
            )
            return elapsed

        yield sweep
