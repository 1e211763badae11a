"""Google Postmaster Tools v2 and Microsoft SNDS automated data access as small real HTTP
servers on loopback (`http.server`), replying in the shapes the reference documents
(shared/reference/sending.md 4.1, 4.2): Postmaster `domains.list` (Domain with
`verificationState`, `permission`), `domains.domainStats.query` (metrics SPAM_RATE,
AUTH_SUCCESS_RATE, DAILY), `domains.getComplianceStatus` (requirements COMPLIANT/NEEDS_WORK)
and Google's error envelope; SNDS `data.aspx?key=` CSV rows per IP in the documented column
order. `malformed=True` answers what a broken provider might: wrong types, unknown enums."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port


@dataclass
class PostmasterDomain:
    spam_rate: float
    auth_success_rate: float
    compliance: dict[str, str] = field(default_factory=dict)
    verification_state: str = "VERIFIED"


@dataclass
class FakePostmaster:
    token: str
    domains: dict[str, PostmasterDomain] = field(default_factory=dict)
    malformed: bool = False
    seen: list[tuple[str, str, Any]] = field(default_factory=list)

    def reply(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, str, str]:
        self.seen.append((method, path, body))
        if headers.get("authorization") != f"Bearer {self.token}":
            error = {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
            }
            return 401, "application/json", json.dumps(error)
        if method == "GET" and path == "/v2/domains":
            listed = [
                {
                    "name": f"domains/{name}",
                    "verificationState": d.verification_state,
                    "permission": "OWNER",
                }
                for name, d in self.domains.items()
            ]
            return 200, "application/json", json.dumps({"domains": listed})
        parts = path.removeprefix("/v2/domains/").split("/", 1)
        domain = self.domains.get(parts[0])
        if domain is None or len(parts) != 2:
            error = {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}
            return 404, "application/json", json.dumps(error)
        if method == "POST" and parts[1] == "domainStats:query":
            end = body["timeQuery"]["dateRanges"][0]["end"]
            values = {"spam_rate": domain.spam_rate, "auth_success_rate": domain.auth_success_rate}
            stats = [
                {
                    "name": f"domains/{parts[0]}/domainStats/{metric}",
                    "metric": metric,
                    "date": end,
                    "value": {"doubleValue": "high" if self.malformed else values[metric]},
                }
                for metric in (d["name"] for d in body["metricDefinitions"])
            ]
            return 200, "application/json", json.dumps({"domainStats": stats})
        if method == "GET" and parts[1] == "complianceStatus":
            rows = [
                {"requirement": r, "status": {"status": "MAYBE" if self.malformed else s}}
                for r, s in domain.compliance.items()
            ]
            payload = {
                "name": f"domains/{parts[0]}/complianceStatus",
                "complianceData": {"domainId": parts[0], "rowData": rows},
            }
            return 200, "application/json", json.dumps(payload)
        return 404, "application/json", json.dumps({"error": {"code": 404}})


@dataclass
class SndsRow:
    ip: str
    filter_result: str
    complaint_rate: str = "< 0.1%"
    trap_hits: int = 0

    def csv(self) -> str:
        # IP, activity start, activity end, RCPT, DATA, recipients, filter result, complaint
        # rate, trap message start, trap message end, trap hits, sample HELO, MAIL FROM, comments
        return ",".join(
            [
                self.ip,
                "11/30/2026 5:00 AM",
                "12/1/2026 4:00 AM",
                "1200",
                "1180",
                "1190",
                self.filter_result,
                self.complaint_rate,
                "",
                "",
                str(self.trap_hits),
                "mail.acme.example",
                "news@acme.example",
                "",
            ]
        )


@dataclass
class FakeSnds:
    key: str
    rows: list[SndsRow] = field(default_factory=list)
    malformed: bool = False
    seen: list[dict[str, str]] = field(default_factory=list)

    def reply(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, str, str]:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        self.seen.append(query)
        if urlsplit(path).path != "/snds/data.aspx":
            return 404, "text/plain", "not found"
        if query.get("key") != self.key:
            return 401, "text/plain", "Unauthorized"
        if self.malformed:
            text = "\n".join(f"{r.ip},garbage,PURPLE" for r in self.rows) + "\n"
            text += "\n".join(SndsRow(r.ip, "PURPLE", "lots", -1).csv() for r in self.rows)
        else:
            text = "\n".join(r.csv() for r in self.rows)
        return 200, "text/csv", text + "\n"


Fake = FakePostmaster | FakeSnds


@contextmanager
def serving_fake(fake: Fake) -> Iterator[str]:
    """The fake on a real loopback port; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path if isinstance(fake, FakeSnds) else urlsplit(self.path).path
            status, kind, text = fake.reply(self.command, path, headers, body)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
