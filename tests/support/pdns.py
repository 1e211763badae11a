"""PowerDNS Authoritative with its HTTP API, for tests: Debian's pdns_server with the sqlite3
backend on free loopback ports (DNS and the API's webserver), an API key, zones created through
the API. The lexicon tests write through lexicon's `powerdns` provider and read back over DNS.

Without pdns_server the tests that need it are skipped, unless PENGUINMAILS_REQUIRE_PDNS=1 (CI),
where a missing PowerDNS is a failure.
"""

import os
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import httpx

from tests.support.ports import free_port

PDNS = os.environ.get("PENGUINMAILS_PDNS_SERVER", "/usr/sbin/pdns_server")
SCHEMAS = (
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
)


def pdns_binary() -> tuple[str, str] | None:
    binary = PDNS if os.path.exists(PDNS) else shutil.which("pdns_server")
    schema = next((s for s in SCHEMAS if os.path.exists(s)), None)
    return (binary, schema) if binary and schema else None


def require_pdns() -> tuple[str, str]:
    import pytest

    found = pdns_binary()
    if found is None:
        reason = (
            "PowerDNS is not installed (apt-get install pdns-server pdns-backend-sqlite3); the "
            "lexicon/PowerDNS tests need it"
        )
        if os.environ.get("PENGUINMAILS_REQUIRE_PDNS") == "1":
            pytest.fail(reason + " and PENGUINMAILS_REQUIRE_PDNS=1", pytrace=False)
        pytest.skip(reason)
    return found


class PowerDns:
    def __init__(self, workdir: Path, found: tuple[str, str], host: str = "127.0.0.1") -> None:
        self.dir = workdir
        self.binary, self.schema = found
        self.host = host
        self.port = free_port(host)
        self.api_port = free_port(host)
        self.api_key = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        """lexicon's `pdns_server` option."""
        return f"http://{self.host}:{self.api_port}"

    def start(self) -> None:
        database = self.dir / "pdns.sqlite3"
        with sqlite3.connect(database) as db:
            db.executescript(Path(self.schema).read_text())
        conf = self.dir / "pdns.conf"
        conf.write_text(
            f"""launch=gsqlite3
gsqlite3-database={database}
local-address={self.host}
local-port={self.port}
api=yes
api-key={self.api_key}
webserver=yes
webserver-address={self.host}
webserver-port={self.api_port}
webserver-allow-from=127.0.0.0/8
socket-dir={self.dir}
daemon=no
guardian=no
disable-syslog=yes
loglevel=3
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
setuid=
setgid=
"""
        )
        self.process = subprocess.Popen(
            [self.binary, f"--config-dir={self.dir}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"pdns_server exited: {err[-2000:]}")
            try:
                if self._api("GET", "/servers/localhost").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("pdns_server did not start in time")
            time.sleep(0.1)

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

    def _api(self, method: str, path: str, json: object = None) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.api_url}/api/v1{path}",
            json=json,
            headers={"X-API-Key": self.api_key},
            timeout=5,
        )

    def add_zone(self, origin: str, records: Sequence[tuple[str, str, list[str]]] = ()) -> str:
        """A native zone; `records` are (relative name or '@', type, [contents as PowerDNS
        wants them: TXT quoted])."""
        origin = origin.rstrip(".").lower()
        rrsets = [
            {
                "name": (origin if name == "@" else f"{name}.{origin}") + ".",
                "type": rtype,
                "ttl": 60,
                "records": [{"content": c, "disabled": False} for c in contents],
            }
            for name, rtype, contents in records
        ]
        answer = self._api(
            "POST",
            "/servers/localhost/zones",
            {
                "name": origin + ".",
                "kind": "Native",
                "nameservers": [f"ns.{origin}."],
                "rrsets": rrsets,
            },
        )
        if answer.status_code != 201:
            raise RuntimeError(f"creating zone {origin}: {answer.status_code} {answer.text}")
        return origin

    def values(self, name: str, rtype: str) -> list[str]:
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
def running_pdns(workdir: Path, host: str = "127.0.0.1") -> Iterator[PowerDns]:
    server = PowerDns(workdir, require_pdns(), host)
    server.start()
    try:
        yield server
    finally:
        server.stop()
