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
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path

from tests.support.daemon import (
    Daemon,
    locate,
    record_values,
    require,
    serving,
    sibling,
    soa_reply,
)
from tests.support.ports import free_port

READY_ZONE = "knot-ready.test"
KNOTD = os.environ.get("PENGUINMAILS_KNOTD", "/usr/sbin/knotd")


def knot_binaries() -> tuple[str, str] | None:
    knotd = locate(KNOTD, "knotd")
    knotc = sibling(knotd, "knotc") if knotd else None
    return (knotd, knotc) if knotd and knotc else None


def require_knot() -> tuple[str, str]:
    reason = "Knot DNS is not installed (apt-get install knot); DNS UPDATE tests need it"
    return require(knot_binaries(), reason, "PENGUINMAILS_REQUIRE_KNOT")


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
        self.daemon: Daemon | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.daemon.process if self.daemon else None

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
        self.daemon = Daemon("knotd", [self.knotd, "-c", str(self.conf)], self.dir / "knot.log")
        self._wait_zone(READY_ZONE)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

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
        if self.daemon is None:
            raise RuntimeError("knotd is not running")

        def served() -> bool:
            reply = soa_reply(self.host, self.port, origin, timeout=0.3)
            return bool(reply and reply.answer)

        self.daemon.wait_until(served, f"serve {origin}")

    def values(self, name: str, rtype: str) -> list[str]:
        """The record values at `name` (absolute, no trailing dot), as Knot answers them;
        TXT values joined into one string each."""
        return record_values(self.host, self.port, name, rtype)


def running_knot(workdir: Path, host: str = "127.0.0.1") -> AbstractContextManager[Knot]:
    return serving(Knot(workdir, require_knot(), host))
