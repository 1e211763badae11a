"""Google Postmaster Tools v2, Google's OAuth token endpoint and Microsoft SNDS automated data
access as small real HTTP servers on loopback (`http.server`).

Postmaster follows the v2 discovery document (googleapis/google-api-python-client
`googleapiclient/discovery_cache/documents/gmailpostmastertools.v2.json`, revision 20260512):
`domainStats:batchQuery` (<= 100 requests, a per-domain `error` Status for a domain the token may
not read), `domains/{d}/domainStats:query` (pageSize default 10, max 200, `nextPageToken`),
`domains/{d}/complianceStatus` and Google's error envelope. Requests are checked against the
same document: a wrong nesting (e.g. `timeQuery.dateRanges` as a list), an unknown metric, an
AUTH_SUCCESS_RATE without its `auth_type` filter is a 400 INVALID_ARGUMENT, so a client that
drifts from the shapes fails its tests. The token endpoint verifies an RS256 JWT bearer
assertion with the service account's public key (RFC 7523). SNDS answers `data.aspx?key=` CSV
rows per IP in the documented column order, CRLF-separated. `malformed=True` answers what a
broken provider might: wrong types, unknown enums."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.ports import free_port

STANDARD_METRICS = {
    "FEEDBACK_LOOP_ID", "FEEDBACK_LOOP_SPAM_RATE", "SPAM_RATE", "AUTH_SUCCESS_RATE",
    "TLS_ENCRYPTION_MESSAGE_COUNT", "TLS_ENCRYPTION_RATE", "DELIVERY_ERROR_COUNT",
    "DELIVERY_ERROR_RATE",
}  # fmt: skip
AUTH_FILTERS = {'auth_type = "spf"', 'auth_type = "dkim"', 'auth_type = "dmarc"'}


def _google_error(code: int, status: str, message: str) -> tuple[int, str, str]:
    body = {"error": {"code": code, "message": message, "status": status}}
    return code, "application/json", json.dumps(body)


def _is_date(d: Any) -> bool:
    return isinstance(d, dict) and all(isinstance(d.get(k), int) for k in ("year", "month", "day"))


def query_problem(body: Any, domain: str | None = None) -> str | None:
    """Why Postmaster would refuse this QueryDomainStatsRequest (INVALID_ARGUMENT), or None."""
    if not isinstance(body, dict):
        return "request must be an object"
    if domain is not None and body.get("parent") not in (None, f"domains/{domain}"):
        return "parent does not match the URL"
    if domain is None and not str(body.get("parent", "")).startswith("domains/"):
        return "parent is required: domains/{domain}"
    definitions = body.get("metricDefinitions")
    if not isinstance(definitions, list) or not definitions:
        return "metricDefinitions is required"
    for d in definitions:
        metric = (d.get("baseMetric") or {}).get("standardMetric") if isinstance(d, dict) else None
        if not isinstance(d, dict) or not d.get("name") or metric not in STANDARD_METRICS:
            return "each metricDefinition needs a name and a baseMetric.standardMetric"
        if metric == "AUTH_SUCCESS_RATE" and d.get("filter") not in AUTH_FILTERS:
            return 'AUTH_SUCCESS_RATE needs filter auth_type = "spf"|"dkim"|"dmarc"'
        if metric == "SPAM_RATE" and d.get("filter"):
            return "SPAM_RATE takes no filter"
    outer = (body.get("timeQuery") or {}).get("dateRanges")
    ranges = outer.get("dateRanges") if isinstance(outer, dict) else None
    if not isinstance(ranges, list) or not ranges:
        return "timeQuery.dateRanges.dateRanges is required"
    if not all(isinstance(r, dict) and _is_date(r.get("start")) and _is_date(r.get("end"))
               for r in ranges):  # fmt: skip
        return "a DateRange needs start and end Dates"
    if body.get("aggregationGranularity", "DAILY") not in ("DAILY", "OVERALL"):
        return "aggregationGranularity must be DAILY or OVERALL"
    size = body.get("pageSize", 10)
    if not isinstance(size, int) or not 0 <= size <= 200:
        return "pageSize must be at most 200"
    return None


@dataclass
class PostmasterDomain:
    spam_rate: float
    auth_success_rate: float | dict[str, float]  # one for all, or per auth_type
    compliance: dict[str, str] = field(default_factory=dict)
    readable: bool = True  # False: PERMISSION_DENIED for this token
    subdomain_compliance: dict[str, str] | None = None


@dataclass
class FakePostmaster:
    token: str
    domains: dict[str, PostmasterDomain] = field(default_factory=dict)
    malformed: bool = False
    days: int = 3  # DAILY rows per metric, ending at the query's end date
    seen: list[tuple[str, str, Any]] = field(default_factory=list)

    def _value(self, domain: PostmasterDomain, definition: dict[str, Any]) -> float:
        if definition["baseMetric"]["standardMetric"] == "SPAM_RATE":
            return domain.spam_rate
        if isinstance(domain.auth_success_rate, dict):
            kind = definition["filter"].split('"')[1]
            return domain.auth_success_rate[kind]
        return domain.auth_success_rate

    def _stats(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """One page of DomainStats: metric-major, newest day last, like the documented
        page token (date + "/" + metric name)."""
        domain = self.domains[name]
        end = body["timeQuery"]["dateRanges"]["dateRanges"][0]["end"]
        rows = []
        for definition in body["metricDefinitions"]:
            for back in range(self.days - 1, -1, -1):
                value = self._value(domain, definition) if back == 0 else 0.5
                d = date(end["year"], end["month"], end["day"]) - timedelta(days=back)
                day = {"year": d.year, "month": d.month, "day": d.day}
                rows.append({
                    "name": f"domains/{name}/domainStats/{len(rows)}",
                    "metric": definition["name"],
                    "date": day,
                    "value": {"doubleValue": "high" if self.malformed else value},
                })  # fmt: skip
        size = body.get("pageSize") or 10
        start = int(body.get("pageToken") or 0)
        page: dict[str, Any] = {"domainStats": rows[start : start + size]}
        if start + size < len(rows):
            page["nextPageToken"] = str(start + size)
        return page

    def reply(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, str, str]:
        self.seen.append((method, path, body))
        if headers.get("authorization") != f"Bearer {self.token}":
            return _google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        if method == "POST" and path == "/v2/domainStats:batchQuery":
            requests = body.get("requests") if isinstance(body, dict) else None
            if not isinstance(requests, list) or not 1 <= len(requests) <= 100:
                return _google_error(400, "INVALID_ARGUMENT", "1 to 100 requests")
            results = []
            for request in requests:
                problem = query_problem(request)
                if problem:
                    return _google_error(400, "INVALID_ARGUMENT", problem)
                name = request["parent"].removeprefix("domains/")
                if name not in self.domains or not self.domains[name].readable:
                    results.append({"error": {"code": 403, "message": "The caller does not "
                                    "have permission", "status": "PERMISSION_DENIED"}})  # fmt: skip
                else:
                    results.append({"response": self._stats(name, request)})
            return 200, "application/json", json.dumps({"results": results})
        parts = path.removeprefix("/v2/domains/").split("/", 1)
        domain = self.domains.get(parts[0])
        if domain is None or not domain.readable or len(parts) != 2:
            return _google_error(403, "PERMISSION_DENIED", "The caller does not have permission")
        if method == "POST" and parts[1] == "domainStats:query":
            problem = query_problem(body, parts[0])
            if problem:
                return _google_error(400, "INVALID_ARGUMENT", problem)
            return 200, "application/json", json.dumps(self._stats(parts[0], body))
        if method == "GET" and parts[1] == "complianceStatus":

            def data(verdicts: dict[str, str]) -> dict[str, Any]:
                rows = [
                    {"requirement": r, "status": {"status": "MAYBE" if self.malformed else s}}
                    for r, s in verdicts.items()
                ]
                return {"domainId": parts[0], "rowData": rows}

            payload: dict[str, Any] = {
                "name": f"domains/{parts[0]}/complianceStatus",
                "complianceData": data(domain.compliance),
            }
            if domain.subdomain_compliance is not None:
                payload["subdomainComplianceData"] = data(domain.subdomain_compliance)
            return 200, "application/json", json.dumps(payload)
        return _google_error(404, "NOT_FOUND", "Method not found.")


@dataclass
class FakeGoogleToken:
    """Google's token endpoint for the service-account (JWT bearer) grant: checks the grant
    type, the RS256 signature against `public_key_pem`, and the claims (iss, scope, aud, a
    lifetime of at most an hour), then issues `issued`."""

    public_key_pem: bytes
    client_email: str
    issued: str = "ya29.issued-by-fake"
    expires_in: int = 3599
    url: str = ""  # set by serving_fake: the `aud` it expects
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    def _refuse(self, description: str) -> tuple[int, str, str]:
        body = {"error": "invalid_grant", "error_description": description}
        return 400, "application/json", json.dumps(body)

    def reply(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, str, str]:
        if method != "POST" or path != "/token":
            return 404, "application/json", json.dumps({"error": "not_found"})
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, "application/json", json.dumps({"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(body or "").items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, "application/json", json.dumps({"error": "unsupported_grant_type"})
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            return self._refuse("Invalid JWT.")

        def decode(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        header, claims = (json.loads(decode(p)) for p in parts[:2])
        key = serialization.load_pem_public_key(self.public_key_pem)
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(
                decode(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return self._refuse("Invalid JWT Signature.")
        self.exchanges.append({"header": header, "claims": claims})
        if header.get("alg") != "RS256" or header.get("typ") != "JWT":
            return self._refuse("Invalid JWT header.")
        if claims.get("iss") != self.client_email or claims.get("aud") != self.url:
            return self._refuse("Invalid issuer or audience.")
        if (
            "https://www.googleapis.com/auth/postmaster.traffic.readonly"
            not in str(claims.get("scope", "")).split()
        ):
            return self._refuse("Invalid scope.")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600:
            return self._refuse("Invalid JWT: Token must be a short-lived token.")
        token = {"access_token": self.issued, "expires_in": self.expires_in, "token_type": "Bearer"}
        return 200, "application/json", json.dumps(token)


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
            text = "\r\n".join(f"{r.ip},garbage,PURPLE" for r in self.rows) + "\r\n"
            text += "\r\n".join(SndsRow(r.ip, "PURPLE", "lots", -1).csv() for r in self.rows)
        else:
            text = "\r\n".join(r.csv() for r in self.rows)
        return 200, "text/csv", text + "\r\n"


Fake = FakePostmaster | FakeSnds | FakeGoogleToken


@contextmanager
def serving_fake(fake: Fake) -> Iterator[str]:
    """The fake on a real loopback port; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            body: Any
            if isinstance(fake, FakeGoogleToken):
                body = raw.decode()
            else:
                body = json.loads(raw) if raw else None
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
    url = f"http://127.0.0.1:{server.server_address[1]}"
    if isinstance(fake, FakeGoogleToken):
        fake.url = f"{url}/token"
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def make_service_account(
    email: str = "pm-reader@acme-project.iam.gserviceaccount.com",
) -> tuple[dict[str, str], bytes]:
    """A Google service-account key JSON (the fields Google's download has) with a fresh RSA
    key, and that key's public half for FakeGoogleToken."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "acme-project",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": email,
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return info, public
