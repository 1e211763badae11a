"""A real DNS UPDATE server for tests: Debian's Knot DNS on a free loopback port, with a TSIG key.

`add_zone(origin, records)` writes a zone file, adds the zone to the configuration and reloads
(`knotc reload`), then waits until Knot serves it. Every test takes a fresh zone name, so updates
made by one test never meet another's. Dynamic updates are accepted only with the TSIG key
(`key_name`, `secret`, hmac-sha256); they stay in Knot's journal (the zone file is never
rewritten), which is what a customer's server would do.

Without knotd the tests that need it are skipped, unless PENGUINMAILS_REQUIRE_KNOT=1 (CI), where a
missing Knot is a failure.
"""

import base64
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from tests.support.ports import free_port

READY_ZONE = "knot-ready.test"
KNOTD = os.environ.get("PENGUINMAILS_KNOTD", "/usr/sbin/knotd")


def knot_binaries() -> tuple[str, str] | None:
    knotd = KNOTD if os.path.exists(KNOTD) else shutil.which("knotd")
    if not knotd:
        return None
    knotc = os.path.join(os.path.dirname(knotd), "knotc")
    knotc = knotc if os.path.exists(knotc) else (shutil.which("knotc") or "")
    return (knotd, knotc) if knotc else None


def require_knot() -> tuple[str, str]:
    import pytest

    found = knot_binaries()
    if found is None:
        reason = "Knot DNS is not installed (apt-get install knot); DNS UPDATE tests need it"
        if os.environ.get("PENGUINMAILS_REQUIRE_KNOT") == "1":
            pytest.fail(reason + " and PENGUINMAILS_REQUIRE_KNOT=1", pytrace=False)
        pytest.skip(reason)
    return found


class Knot:
    key_name = "penguinmails-test."
    algorithm = "hmac-sha256"

    def __init__(self, workdir: Path, binaries: tuple[str, str], host: str = "127.0.0.1") -> None:
        self.dir = workdir
        self.knotd, self.knotc = binaries
        self.host = host
        self.port = free_port(host)
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.zones: dict[str, str] = {}
        self.conf = workdir / "knot.conf"
        self.socket = workdir / "knot.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        """The `server` setting of an rfc2136 connection to this Knot."""
        return f"{self.host}:{self.port}"

    nameservers = server

    def _write_conf(self) -> None:
        (self.dir / "zones").mkdir(parents=True, exist_ok=True)
        (self.dir / "db").mkdir(parents=True, exist_ok=True)
        zones = "".join(f"  - domain: {z}\n" for z in sorted(self.zones))
        self.conf.write_text(
            f"""server:
    rundir: "{self.dir}"
    listen: {self.host}@{self.port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 2
database:
    storage: "{self.dir}/db"
control:
    listen: "{self.socket}"
log:
  - target: stderr
    any: error
key:
  - id: {self.key_name}
    algorithm: {self.algorithm}
    secret: {self.secret}
acl:
  - id: tsig-update
    key: {self.key_name}
    action: update
template:
  - id: default
    storage: "{self.dir}/zones"
    file: "%s.zone"
    acl: tsig-update
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    semantic-checks: off
    serial-policy: increment
zone:
{zones}"""
        )

    def start(self) -> None:
        # Knot wants at least one zone in its configuration.
        self._write_zone(READY_ZONE, "")
        self.process = subprocess.Popen(
            [self.knotd, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_zone(READY_ZONE)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            raise RuntimeError(f"knotd exited: {err}")

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

    def add_zone(self, origin: str, records: str = "") -> str:
        """Serve a new zone: `records` are zone file lines relative to the origin."""
        origin = origin.rstrip(".").lower()
        self._write_zone(origin, records)
        done = subprocess.run(
            [self.knotc, "-c", str(self.conf), "-s", str(self.socket), "reload"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"knotc reload: {(done.stdout + done.stderr).decode().strip()}")
        self._wait_zone(origin)
        return origin

    def _write_zone(self, origin: str, records: str) -> None:
        body = (
            f"$ORIGIN {origin}.\n$TTL 60\n"
            f"@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 60\n"
            f"@ IN NS ns.{origin}.\nns IN A 127.0.0.1\n{records}\n"
        )
        (self.dir / "zones").mkdir(parents=True, exist_ok=True)
        (self.dir / "zones" / f"{origin}.zone").write_text(body)
        self.zones[origin] = records
        self._write_conf()

    def _wait_zone(self, origin: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                reply = dns.query.udp(
                    dns.message.make_query(origin + ".", dns.rdatatype.SOA),
                    self.host,
                    port=self.port,
                    timeout=0.3,
                )
                if reply.answer:
                    return
            except (TimeoutError, OSError, dns.exception.DNSException):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"knotd did not serve {origin} in time")

    def values(self, name: str, rtype: str) -> list[str]:
        """The record values at `name` (absolute, no trailing dot), as Knot answers them;
        TXT values joined into one string each."""
        reply = dns.query.tcp(
            dns.message.make_query(name.rstrip(".") + ".", rtype),
            self.host,
            port=self.port,
            timeout=2,
        )
        out = []
        for rrset in reply.answer:
            if rrset.rdtype != dns.rdatatype.from_text(rtype):
                continue
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.TXT:
                    out.append(b"".join(rdata.strings).decode())
                else:
                    out.append(rdata.to_text())
        return sorted(out)


@contextmanager
def running_knot(workdir: Path, host: str = "127.0.0.1") -> Iterator[Knot]:
    server = Knot(workdir, require_knot(), host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
