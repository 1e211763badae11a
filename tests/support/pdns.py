"""PowerDNS Authoritative with its HTTP API, for tests: Debian's pdns_server with the sqlite3
backend on free loopback ports (DNS and the API's webserver), an API key, zones created through
the API. The lexicon tests write through lexicon's `powerdns` provider and read back over DNS.

Without pdns_server the tests that need it are skipped, unless PENGUINMAILS_REQUIRE_PDNS=1 (CI),
where a missing PowerDNS is a failure.
"""

import os
import secrets
import sqlite3
import subprocess
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tests.support.daemon import Daemon, locate, record_values, require, serving
from tests.support.ports import free_port

PDNS = os.environ.get("PENGUINMAILS_PDNS_SERVER", "/usr/sbin/pdns_server")
SCHEMAS = (
    "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql",
    "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql",
)


def pdns_binary() -> tuple[str, str] | None:
    binary = locate(PDNS, "pdns_server")
    schema = next((s for s in SCHEMAS if os.path.exists(s)), None)
    return (binary, schema) if binary and schema else None


def require_pdns() -> tuple[str, str]:
    reason = (
        "PowerDNS is not installed (apt-get install pdns-server pdns-backend-sqlite3); the "
        "lexicon/PowerDNS tests need it"
    )
    return require(pdns_binary(), reason, "PENGUINMAILS_REQUIRE_PDNS")


class PowerDns:
    def __init__(self, workdir: Path, found: tuple[str, str], host: str = "127.0.0.1") -> None:
        self.dir = workdir
        self.binary, self.schema = found
        self.host = host
        self.port = free_port(host)
        self.api_port = free_port(host)
        self.api_key = secrets.token_hex(16)
        self.daemon: Daemon | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.daemon.process if self.daemon else None

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
        self.daemon = Daemon(
            "pdns_server", [self.binary, f"--config-dir={self.dir}"], self.dir / "pdns.log"
        )
        self.daemon.wait_until(self._api_up, "start", timeout=30, interval=0.1)

    def _api_up(self) -> bool:
        try:
            return self._api("GET", "/servers/localhost").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None

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
        return record_values(self.host, self.port, name, rtype)


def running_pdns(workdir: Path, host: str = "127.0.0.1") -> AbstractContextManager[PowerDns]:
    return serving(PowerDns(workdir, require_pdns(), host))
