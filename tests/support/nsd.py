"""A real authoritative DNS server for tests: Debian's nsd on a free loopback port.

Start it once (module or session scope) and publish zones as tests need them: `publish()` writes
zone files, adds new zones through nsd-control (a unix socket, no TLS keys needed) or reloads
changed ones, and waits until nsd serves the new serial. Response-rate limiting is off
(`rrl-ratelimit: 0`), so benchmarks are not throttled.

Without nsd installed the tests that need it are skipped, unless PENGUINMAILS_REQUIRE_NSD=1
(CI), where a missing nsd is a failure.
"""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from tests.support.ports import free_port

NSD = os.environ.get("PENGUINMAILS_NSD", "/usr/sbin/nsd")
READY_ZONE = "nsd-ready.test"


def nsd_binaries() -> tuple[str, str] | None:
    nsd = NSD if os.path.exists(NSD) else shutil.which("nsd")
    control = shutil.which("nsd-control") or (
        os.path.join(os.path.dirname(nsd), "nsd-control") if nsd else None
    )
    if nsd and control and os.path.exists(control):
        return nsd, control
    return None


def require_nsd() -> tuple[str, str]:
    """The nsd and nsd-control paths, or skip (fail when PENGUINMAILS_REQUIRE_NSD=1)."""
    import pytest

    found = nsd_binaries()
    if found is None:
        reason = "nsd is not installed (apt-get install nsd); DNS tests need a real DNS server"
        if os.environ.get("PENGUINMAILS_REQUIRE_NSD") == "1":
            pytest.fail(reason + " and PENGUINMAILS_REQUIRE_NSD=1", pytrace=False)
        pytest.skip(reason)
    return found


class Nsd:
    def __init__(self, workdir: Path, binaries: tuple[str, str], host: str = "127.0.0.1") -> None:
        self.dir = workdir
        self.nsd, self.control = binaries
        self.host = host
        self.port = free_port(host)
        self.zones_dir = workdir / "zones"
        self.conf = workdir / "nsd.conf"
        self.process: subprocess.Popen[bytes] | None = None
        self._serials: dict[str, int] = {}

    @property
    def nameservers(self) -> str:
        """The PENGUINMAILS_DNS_NAMESERVERS value pointing at this server."""
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def _write_conf(self) -> None:
        d = self.dir
        self.zones_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"""server:
  ip-address: {self.host}@{self.port}
  port: {self.port}
  do-ip6: no
  username: ""
  chroot: ""
  zonesdir: "{self.zones_dir}"
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  pidfile: "{d}/nsd.pid"
  logfile: "{d}/nsd.log"
  database: ""
  server-count: 1
  verbosity: 0
  hide-version: yes
  rrl-ratelimit: 0
  refuse-any: no
remote-control:
  control-enable: yes
  control-interface: {d}/nsd.ctl
pattern:
  name: "test"
  zonefile: "%s.zone"
zone:
  name: "{READY_ZONE}"
  include-pattern: "test"
"""
        )
        self._write_zone(READY_ZONE, "")

    def start(self) -> None:
        self._write_conf()
        self.process = subprocess.Popen(
            [self.nsd, "-d", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_serial(READY_ZONE, self._serials[READY_ZONE], start=True)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None

    def _write_zone(self, origin: str, records: str) -> None:
        serial = self._serials.get(origin, 0) + 1
        self._serials[origin] = serial
        body = (
            f"$ORIGIN {origin}.\n$TTL 60\n"
            f"@ IN SOA ns.{origin}. hostmaster.{origin}. {serial} 3600 600 86400 60\n"
            f"@ IN NS ns.invalid.\n{records}\n"
        )
        (self.zones_dir / f"{origin}.zone").write_text(body)

    def _ctl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [self.control, "-c", str(self.conf), *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=False,
            timeout=30,
        )
        out = done.stdout.decode() + done.stderr.decode()
        if done.returncode != 0 or "error" in out.lower():
            raise RuntimeError(f"nsd-control {' '.join(args)}: {out.strip()}")
        return out

    def _check_zone(self, origin: str) -> None:
        checker = os.path.join(os.path.dirname(self.nsd), "nsd-checkzone")
        if not os.path.exists(checker):
            return
        path = self.zones_dir / f"{origin}.zone"
        done = subprocess.run([checker, origin, str(path)], capture_output=True, check=False)
        if done.returncode != 0:
            raise ValueError(f"zone {origin} does not load: {done.stderr.decode().strip()}")

    def publish(self, zones: Mapping[str, str]) -> None:
        """Add or replace zones: origin -> zone file lines relative to the origin."""
        new = []
        for origin, records in zones.items():
            origin = origin.rstrip(".").lower()
            if origin not in self._serials:
                new.append(origin)
            self._write_zone(origin, records)
        for origin in zones:
            self._check_zone(origin.rstrip(".").lower())
        if new:
            self._ctl("addzones", stdin="".join(f"{z} test\n" for z in new))
        changed = [z.rstrip(".").lower() for z in zones if z.rstrip(".").lower() not in new]
        for origin in changed:
            self._ctl("reload", origin)
        for origin in zones:
            origin = origin.rstrip(".").lower()
            self._wait_serial(origin, self._serials[origin])

    def _wait_serial(self, origin: str, serial: int, start: bool = False) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.dir / "nsd.log"
                raise RuntimeError(f"nsd exited: {err} {log.read_text() if log.exists() else ''}")
            try:
                reply = dns.query.udp(
                    dns.message.make_query(origin + ".", dns.rdatatype.SOA),
                    self.host,
                    port=self.port,
                    timeout=0.2,
                )
                if reply.answer and next(iter(reply.answer[0])).serial >= serial:
                    return
            except (TimeoutError, OSError, dns.exception.DNSException):
                pass
            time.sleep(0.01 if not start else 0.05)
        raise RuntimeError(f"nsd did not serve {origin} serial {serial} in time")


@contextmanager
def running_nsd(workdir: Path, host: str = "127.0.0.1") -> Iterator[Nsd]:
    server = Nsd(workdir, require_nsd(), host)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def silent_nameserver(host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A UDP socket that receives queries and never answers: a nameserver that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield host, int(sock.getsockname()[1])
