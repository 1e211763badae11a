"""A real authoritative DNS server for tests: Debian's nsd on a free loopback port.

Start it once (module or session scope) and publish zones as tests need them: `publish()` writes
zone files, adds new zones through nsd-control (a unix socket, no TLS keys needed) or reloads
changed ones, and waits until nsd serves the new serial. Response-rate limiting is off
(`rrl-ratelimit: 0`), so benchmarks are not throttled.

Without nsd installed the tests that need it are skipped, unless PENGUINMAILS_REQUIRE_NSD=1
(CI), where a missing nsd is a failure.
"""

import os
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.support.daemon import Daemon, locate, require, serving, sibling, soa_reply
from tests.support.ports import free_port

NSD = os.environ.get("PENGUINMAILS_NSD", "/usr/sbin/nsd")
READY_ZONE = "nsd-ready.test"


def nsd_binaries() -> tuple[str, str] | None:
    nsd = locate(NSD, "nsd")
    control = sibling(nsd, "nsd-control") if nsd else None
    return (nsd, control) if nsd and control else None


def require_nsd() -> tuple[str, str]:
    """The nsd and nsd-control paths, or skip (fail when PENGUINMAILS_REQUIRE_NSD=1)."""
    reason = "nsd is not installed (apt-get install nsd); DNS tests need a real DNS server"
    return require(nsd_binaries(), reason, "PENGUINMAILS_REQUIRE_NSD")


class Nsd:
    def __init__(self, workdir: Path, binaries: tuple[str, str], host: str = "127.0.0.1") -> None:
        self.dir = workdir
        self.nsd, self.control = binaries
        self.host = host
        self.port = free_port(host)
        self.zones_dir = workdir / "zones"
        self.conf = workdir / "nsd.conf"
        self.daemon: Daemon | None = None
        self._serials: dict[str, int] = {}

    @property
    def nameservers(self) -> str:
        """The PENGUINMAILS_DNS_NAMESERVERS value pointing at this server."""
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.daemon.process if self.daemon else None

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
        self.daemon = Daemon(
            "nsd",
            [self.nsd, "-d", "-c", str(self.conf)],
            self.dir / "nsd.out",
            logs=[self.dir / "nsd.log"],
        )
        self._wait_serial(READY_ZONE, self._serials[READY_ZONE], start=True)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

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
        if self.daemon is None:
            raise RuntimeError("nsd is not running")

        def served() -> bool:
            reply = soa_reply(self.host, self.port, origin, timeout=0.2)
            return bool(reply and reply.answer and next(iter(reply.answer[0])).serial >= serial)

        self.daemon.wait_until(
            served, f"serve {origin} serial {serial}", interval=0.05 if start else 0.01
        )


def running_nsd(workdir: Path, host: str = "127.0.0.1") -> AbstractContextManager[Nsd]:
    return serving(Nsd(workdir, require_nsd(), host))


@contextmanager
def silent_nameserver(host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """A UDP socket that receives queries and never answers: a nameserver that is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield host, int(sock.getsockname()[1])
