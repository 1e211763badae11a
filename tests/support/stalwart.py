"""A loopback fake of one Stalwart server's management HTTP listener (127.0.0.1), both generations:

- v0.16 JMAP (`POST /jmap/`, `urn:stalwart:jmap`): `x:<Object>/get|query|set` for Domain,
  DkimSignature, Account, AcmeProvider, SystemSettings (a singleton), QueuedMessage, Log,
  Certificate and MtaOutboundThrottle (checked by tests/support/stalwart_throttle.py), and
  `x:Action/set` `ReloadSettings`. Shapes follow the v0.16.18 registry schema as summarised in
  /work/shared/reference/provisioning-review.md section 3 (crates/registry/src/schema/*,
  jmap/src/registry/mapping/principal.rs, docs/ref/object/*.md, object-encoding.md): lists are
  objects keyed "0", "1", ...; sets are {member: true}; sizes are bytes. Errors are HTTP 200:
  `["error", {"type": ...}]` per method, `notCreated`/`notUpdated`/`notDestroyed` SetErrors
  (`invalidProperties`, `validationFailed`, `primaryKeyViolation`, `objectIsLinked`, `notFound`);
  401 problem+json for bad credentials, 400 for a body that is not JSON (request.rs `NotJson`).
- v0.12-v0.15 REST (`/api/settings`, `/api/reload` (which reports bad outbound limiters),
  `/api/principal`, `/api/queue/messages`, `/api/logs`): management errors as HTTP 200
  `{"error": ...}` (management/mod.rs `ManagementApiError`).

Recovery mode and the recovery admin (v0.16) and the fallback admin (v0.15) are read from the
files the install scripts write in a scratch root, when the stub `systemctl` (re)starts the
service: it calls `GET /__restart`, as a real restart would make the server re-read them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.stalwart_metrics import basic, exposition
from tests.support.stalwart_throttle import jmap_problem, rest_errors

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
DKIM_TYPES = {"Dkim1RsaSha256", "Dkim1Ed25519Sha256"}
OBJECTS = (
    "Domain",
    "DkimSignature",
    "Account",
    "AcmeProvider",
    "QueuedMessage",
    "Log",
    "Certificate",
    "NetworkListener",
    "MtaOutboundThrottle",
)
# v0.16's listeners on a fresh install, as crates/common/src/manager/defaults.rs (v0.16.18)
# writes them: every one bound to [::]:port, the plain-HTTP `http` one on 8080 included.
DEFAULT_LISTENERS = (
    ("smtp", "smtp", 25, False),
    ("submissions", "smtp", 465, True),
    ("imaps", "imap", 993, True),
    ("pop3s", "pop3", 995, True),
    ("sieve", "manageSieve", 4190, False),
    ("https", "http", 443, True),
    ("http", "http", 8080, False),
)


class SetError(Exception):
    def __init__(self, type_: str, description: str = "", properties: list[str] | None = None):
        super().__init__(description)
        self.body: dict[str, Any] = {"type": type_, "description": description}
        if properties:
            self.body["properties"] = properties


def _env_value(raw: str) -> str:
    raw = raw.strip()
    if raw.startswith('"') and raw.endswith('"'):
        out, i, body = [], 0, raw[1:-1]
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    return raw


class FakeStalwart:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in OBJECTS}
        self.settings: dict[str, Any] = {"defaultHostname": None, "defaultDomainId": None}
        self.recovery_mode = False
        self.recovery_admin: tuple[str, str] | None = None
        self.restarts: list[str] = []  # "recovery" | "normal"
        self.methods: list[str] = []
        self.rest_settings: dict[str, str] = {}
        self.rest_principals: dict[str, dict[str, Any]] = {}
        self.reloads = 0
        # The throttles in force: the registry's as of the last ReloadSettings (v0.16).
        self.applied_throttles: dict[str, dict[str, Any]] = {}
        # v0.16 `Metrics` singleton (structs.rs `Metrics`; default: Prometheus disabled) and
        # what is in force since the last reload/restart; v0.15 settings in force likewise.
        self.metrics: dict[str, Any] = {
            "openTelemetry": {"@type": "Disabled"},
            "prometheus": {"@type": "Disabled"},
            "metrics": {},
            "metricsPolicy": "Exclude",
        }
        self.applied_metrics: dict[str, Any] = json.loads(json.dumps(self.metrics))
        self.rest_applied: dict[str, str] = {}
        # Event id -> count since start, served at /metrics/prometheus (stalwart_metrics.py).
        self.delivery_counters: dict[str, int] = {}
        self.rest_logs: list[dict[str, Any]] = []
        self._next = 0
        self._lock = threading.Lock()
        for name, protocol, port, implicit in DEFAULT_LISTENERS:
            # `bind` is a Map<SocketAddr>: serialised as {"addr": true} (types/map.rs).
            self.add("NetworkListener", name=name, protocol=protocol,
                     bind={f"[::]:{port}": True}, useTls=True, tlsImplicit=implicit)  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeStalwart:
        """Serve the management listener on loopback (plain HTTP, as on 127.0.0.1:8080)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seed_admin(self, hostname: str, password: str) -> None:
        """A configured v0.16 server: its own domain and admin@<it> with the Admin role."""
        dom = {"id": self.new_id(), "name": hostname}
        self.objects["Domain"][dom["id"]] = dom
        admin = {
            "id": self.new_id(),
            "@type": "User",
            "name": "admin",
            "domainId": dom["id"],
            "roles": {"@type": "Admin"},
            "credentials": {"0": {"@type": "Password", "secret": password}},
        }
        self.objects["Account"][admin["id"]] = admin

    def add(self, kind: str, **fields: Any) -> str:
        id_ = self.new_id()
        self.objects[kind][id_] = {"id": id_, **fields}
        return id_

    # Helpers for tests ------------------------------------------------------------------

    def new_id(self) -> str:
        self._next += 1
        return f"i{self._next}"

    def find(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [
            o for o in self.objects[kind].values() if all(o.get(k) == v for k, v in match.items())
        ]

    def login(self, user: str, password: str) -> bool:
        """Whether `user:password` authenticates as an administrator (v0.16)."""
        if self.recovery_admin is not None and (user, password) == self.recovery_admin:
            return True
        if self.recovery_mode or "@" not in user:
            return False
        local, domain = user.rsplit("@", 1)
        for dom in self.find("Domain", name=domain):
            for account in self.find("Account", name=local, domainId=dom["id"]):
                secrets = [
                    c.get("secret") for c in account.get("credentials", {}).values()
                    if c.get("@type") == "Password"
                ]  # fmt: skip
                if password in secrets and account.get("roles", {}).get("@type") == "Admin":
                    return True
        return False

    def user_login(self, address: str, password: str) -> bool:
        local, domain = address.rsplit("@", 1)
        for dom in self.find("Domain", name=domain):
            for account in self.find("Account", name=local, domainId=dom["id"]):
                creds = account.get("credentials", {}).values()
                if any(c.get("secret") == password for c in creds):
                    return True
        return False

    def restart(self) -> None:
        """Re-read stalwart.env (v0.16) or config.toml (v0.15), as a started server does."""
        env: dict[str, str] = {}
        env_file = self.root / "etc/stalwart/stalwart.env"
        if env_file.exists():
            for line in env_file.read_text().splitlines():
                if "=" in line and not line.lstrip().startswith("#"):
                    key, value = line.split("=", 1)
                    env[key.strip()] = _env_value(value)
        self.recovery_mode = env.get("STALWART_RECOVERY_MODE") in ("1", "true")
        admin = env.get("STALWART_RECOVERY_ADMIN")
        self.recovery_admin = tuple(admin.split(":", 1)) if admin and ":" in admin else None  # type: ignore[assignment]
        self.restarts.append("recovery" if self.recovery_mode else "normal")
        # A started server builds its config from the registry / stored settings.
        self.applied_metrics = json.loads(json.dumps(self.metrics))
        self.applied_throttles = json.loads(json.dumps(self.objects["MtaOutboundThrottle"]))
        self.rest_applied = dict(self.rest_settings)

    def fallback_admin(self) -> str | None:
        """The fallback admin's secret as config.toml holds it (plain or sha512-crypt)."""
        config = self.root / "opt/stalwart/etc/config.toml"
        for line in config.read_text().splitlines() if config.exists() else []:
            if line.startswith("secret = "):
                return line.split("=", 1)[1].strip().strip("'\"")
        return None

    def fallback_login(self, password: str) -> bool:
        secret = self.fallback_admin()
        if secret is None:
            return False
        if secret.startswith("$6$"):
            # sha512-crypt, as --init writes it (boot.rs quickstart): check with openssl.
            salt = secret.split("$")[2]
            argv = ["openssl", "passwd", "-6", "-salt", salt, "-stdin"]
            out = subprocess.run(argv, input=password, capture_output=True, text=True, check=True)
            return out.stdout.strip() == secret
        return secret == password

    # JMAP -------------------------------------------------------------------------------

    def call(self, method: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.methods.append(method)
        if not method.startswith("x:") or "/" not in method:
            return "error", {"type": "unknownMethod"}
        kind, verb = method[2:].split("/", 1)
        if kind == "SystemSettings":
            return self._singleton(method, verb, args)
        if kind == "Action" and verb == "set":
            return method, self._action(args)
        if kind == "Metrics":
            return self._metrics(method, verb, args)
        if kind not in self.objects or verb not in ("get", "query", "set"):
            return "error", {"type": "unknownMethod"}
        if self.recovery_mode and kind in ("QueuedMessage", "Log"):
            return "error", {"type": "forbidden", "description": "recovery mode"}
        if verb == "query":
            flt = args.get("filter") or {}
            ids = [o["id"] for o in self.find(kind, **flt)]
            return method, {"ids": ids, "total": len(ids), "position": 0}
        if verb == "get":
            return method, self._get(kind, args)
        return method, self._set(kind, args)

    def _get(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        ids = args.get("ids")
        store = self.objects[kind]
        wanted = list(store) if ids is None else ids
        props = args.get("properties")
        found, missing = [], []
        for id_ in wanted:
            obj = store.get(id_)
            if obj is None:
                missing.append(id_)
                continue
            view = json.loads(json.dumps(obj))
            for cred in view.get("credentials", {}).values():
                cred.pop("secret", None)  # secrets are write-only
            if isinstance(view.get("privateKey"), dict):
                view["privateKey"].pop("secret", None)
            if props:
                view = {k: v for k, v in view.items() if k in props or k == "id"}
            found.append(view)
        return {"list": found, "notFound": missing}

    def _action(self, args: dict[str, Any]) -> dict[str, Any]:
        """x:Action/set: ReloadSettings rebuilds the running config from the registry
        (mapping/action.rs); the fake keeps a copy of the throttles it would then enforce."""
        out: dict[str, Any] = {"created": {}}
        refused: dict[str, Any] = {}
        for key, obj in (args.get("create") or {}).items():
            if obj.get("@type") != "ReloadSettings":
                refused[key] = {"type": "invalidProperties", "properties": ["@type"]}
                continue
            self.reloads += 1
            self.applied_throttles = json.loads(json.dumps(self.objects["MtaOutboundThrottle"]))
            self.applied_metrics = json.loads(json.dumps(self.metrics))
            out["created"][key] = {"id": self.new_id()}
        if refused:
            out["notCreated"] = refused
        return out

    def _metrics(self, method: str, verb: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """x:Metrics (a singleton): `prometheus` is `{"@type": "Disabled"}` or `{"@type":
        "Enabled", "authUsername": str|null, "authSecret": SecretKeyOptional}` (structs.rs
        `MetricsPrometheus`, `MetricsPrometheusProperties`, `SecretKeyOptional`)."""
        if verb == "get":
            view = json.loads(json.dumps(self.metrics))
            (view["prometheus"].get("authSecret") or {}).pop("secret", None)
            return method, {"list": [{"id": "singleton", **view}], "notFound": []}
        if verb != "set":
            return "error", {"type": "unknownMethod"}
        not_updated: dict[str, Any] = {}
        for id_, patch in (args.get("update") or {}).items():
            prom = patch.get("prometheus", self.metrics["prometheus"])
            secret = prom.get("authSecret", {"@type": "None"}) if isinstance(prom, dict) else {}
            if id_ != "singleton":
                not_updated[id_] = {"type": "notFound"}
            elif set(patch) - set(self.metrics):
                not_updated[id_] = {"type": "invalidProperties", "properties": sorted(patch)}
            elif (
                not isinstance(prom, dict)
                or prom.get("@type") not in ("Disabled", "Enabled")
                or set(prom) - {"@type", "authUsername", "authSecret"}
                or not isinstance(secret, dict)
                or secret.get("@type") not in ("None", "Value", "EnvironmentVariable", "File")
                or (secret.get("@type") == "Value" and not isinstance(secret.get("secret"), str))
            ):
                not_updated[id_] = {"type": "invalidProperties", "properties": ["prometheus"]}
            else:
                self.metrics.update(json.loads(json.dumps(patch)))
        updated = {k: None for k in (args.get("update") or {}) if k not in not_updated}
        return method, {"updated": updated, "notUpdated": not_updated}

    def answer(self, authorization: str | None) -> tuple[int, str]:
        """`GET /metrics/prometheus` as configured (request.rs: not found when disabled; with a
        username, only that Basic user)."""
        prom = self.applied_metrics.get("prometheus") or {}
        if prom.get("@type") == "Enabled":
            user, secret = prom.get("authUsername"), (prom.get("authSecret") or {}).get("secret")
        elif self.rest_applied.get("metrics.prometheus.enable") == "true":
            user = self.rest_applied.get("metrics.prometheus.auth.username")
            secret = self.rest_applied.get("metrics.prometheus.auth.secret")
        else:
            return 404, ""
        if user and secret and authorization != basic(user, secret):
            return 401, json.dumps({"type": "about:blank", "detail": "Invalid credentials."})
        return 200, exposition(self.delivery_counters)

    def _singleton(
        self, method: str, verb: str, args: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        if verb == "get":
            return method, {"list": [{"id": "singleton", **self.settings}], "notFound": []}
        if verb != "set":
            return "error", {"type": "unknownMethod"}
        not_updated = {}
        for id_, patch in (args.get("update") or {}).items():
            if id_ != "singleton":
                not_updated[id_] = {"type": "notFound"}
                continue
            unknown = [k for k in patch if k not in self.settings]
            if unknown:
                not_updated[id_] = {"type": "invalidProperties", "properties": unknown}
                continue
            if (
                patch.get("defaultDomainId")
                and patch["defaultDomainId"] not in self.objects["Domain"]
            ):
                not_updated[id_] = {"type": "invalidProperties", "properties": ["defaultDomainId"]}
                continue
            self.settings.update(patch)
        updated = {k: None for k in (args.get("update") or {}) if k not in not_updated}
        return method, {"updated": updated, "notUpdated": not_updated}

    def _set(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"created": {}, "updated": {}, "destroyed": []}
        errors: dict[str, dict[str, Any]] = {"notCreated": {}, "notUpdated": {}, "notDestroyed": {}}
        store = self.objects[kind]
        # RFC 8620 5.3: creations, then updates, then destructions.
        for key, obj in (args.get("create") or {}).items():
            try:
                new = dict(obj, id=self.new_id())
                self._validate(kind, new, None)
                store[new["id"]] = new
                out["created"][key] = {"id": new["id"]}
            except SetError as err:
                errors["notCreated"][key] = err.body
        for id_, patch in (args.get("update") or {}).items():
            try:
                if id_ not in store:
                    raise SetError("notFound")
                new = json.loads(json.dumps(store[id_]))
                for path, value in patch.items():
                    _patch(new, path, value)
                self._validate(kind, new, id_)
                store[id_] = new
                out["updated"][id_] = None
            except SetError as err:
                errors["notUpdated"][id_] = err.body
        for id_ in args.get("destroy") or []:
            try:
                if id_ not in store:
                    raise SetError("notFound")
                if kind == "Domain" and (
                    self.find("Account", domainId=id_) or self.find("DkimSignature", domainId=id_)
                ):
                    raise SetError("objectIsLinked", "accounts or signatures use this domain")
                del store[id_]
                out["destroyed"].append(id_)
            except SetError as err:
                errors["notDestroyed"][id_] = err.body
        out.update({k: v for k, v in errors.items() if v})
        return out

    def _validate(self, kind: str, obj: dict[str, Any], id_: str | None) -> None:
        others = [o for o in self.objects[kind].values() if o["id"] != id_]
        domains = self.objects["Domain"]
        if kind == "Domain":
            if not obj.get("name"):
                raise SetError("invalidProperties", "name is required", ["name"])
            if any(o["name"] == obj["name"] for o in others):
                raise SetError("primaryKeyViolation", f"domain {obj['name']} exists", ["name"])
            cert = obj.get("certificateManagement") or {"@type": "Manual"}
            automatic = cert.get("@type") == "Automatic"
            if automatic and cert.get("acmeProviderId") not in self.objects["AcmeProvider"]:
                raise SetError(
                    "invalidProperties", "unknown ACME provider", ["certificateManagement"]
                )
        elif kind == "DkimSignature":
            if obj.get("@type") not in DKIM_TYPES:
                raise SetError("invalidProperties", "unknown signature type", ["@type"])
            if obj.get("domainId") not in domains:
                raise SetError("invalidProperties", "unknown domain", ["domainId"])
            key = obj.get("privateKey") or {}
            if key.get("@type") != "Text" or "-----BEGIN" not in str(key.get("secret", "")):
                raise SetError("validationFailed", "invalid private key", ["privateKey"])
            obj.setdefault("canonicalization", "relaxed/relaxed")
            obj.setdefault(
                "headers",
                {h: True for h in ("From", "To", "Date", "Subject", "Message-ID")},
            )
            obj.setdefault("report", True)
            obj.setdefault("stage", "active")
            obj["publicKey"] = "server-derived"
            same = (obj["domainId"], obj["selector"], obj["@type"])
            if any((o["domainId"], o["selector"], o["@type"]) == same for o in others):
                raise SetError("primaryKeyViolation", "signature exists", ["selector"])
        elif kind == "Account":
            if obj.get("@type") not in ("User", "Group"):
                raise SetError("invalidProperties", "unknown account type", ["@type"])
            if obj.get("domainId") not in domains or "@" in str(obj.get("name", "@")):
                raise SetError(
                    "invalidProperties", "name is a local part of a domain", ["domainId"]
                )
            if any((o["name"], o["domainId"]) == (obj["name"], obj["domainId"]) for o in others):
                raise SetError("primaryKeyViolation", "account exists", ["name"])
            passwords = [
                c for c in (obj.get("credentials") or {}).values() if c.get("@type") == "Password"
            ]
            if len(passwords) > 1:
                raise SetError("validationFailed", "only one password", ["credentials"])
            for cred in passwords:
                # v0.16 defaults: passwordMinLength 8 (security.rs; zxcvbn not modelled).
                if len(str(cred.get("secret", ""))) < 8:
                    raise SetError("validationFailed", "password too short", ["credentials"])
                cred.setdefault("credentialId", self.new_id())
            if obj.get("roles", {}).get("@type") not in ("User", "Admin", "Custom"):
                raise SetError("invalidProperties", "roles", ["roles"])
            quota = (obj.get("quotas") or {}).get("maxDiskQuota", 0)
            if not isinstance(quota, int) or isinstance(quota, bool):
                raise SetError("invalidProperties", "sizes are bytes", ["quotas"])
        elif kind == "MtaOutboundThrottle":
            problem = jmap_problem(obj)
            if problem:
                raise SetError(problem[0], problem[1], [problem[2]])
            obj.setdefault("enable", True)
        elif kind == "AcmeProvider":
            if obj.get("challengeType") not in ("TlsAlpn01", "Http01", "Dns01"):
                raise SetError("invalidProperties", "challengeType", ["challengeType"])
            if not obj.get("contact") or not isinstance(obj["contact"], dict):
                raise SetError("invalidProperties", "contact is a set", ["contact"])
            if obj.setdefault("directory", LETS_ENCRYPT) != LETS_ENCRYPT and id_ is None:
                raise SetError("invalidProperties", "directory is read-only", ["directory"])

    def jmap_http(
        self, creds: tuple[str, str] | None, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, Any]]:
        """One `POST /jmap/`: (status, body); a non-200 body is {"type", "detail"}."""
        if creds is None or not self.login(*creds):
            return 401, {"type": "about:blank", "detail": "You have to authenticate first."}
        not_json = {"type": "urn:ietf:params:jmap:error:notJSON", "detail": "not JSON"}
        if content_type.split(";")[0].strip() != "application/json":
            return 400, not_json
        try:
            request = json.loads(raw)
        except ValueError:
            return 400, not_json
        using = request.get("using") or []
        responses = []
        for name, args, call_id in request.get("methodCalls") or []:
            if name.startswith("x:") and "urn:stalwart:jmap" not in using:
                responses.append(["error", {"type": "unknownMethod"}, call_id])
                continue
            out_name, result = self.call(name, args)
            responses.append([out_name, result, call_id])
        return 200, {"methodResponses": responses, "sessionState": "0"}

    # REST (v0.12-v0.15) -----------------------------------------------------------------

    def rest(self, method: str, path: str, body: Any) -> dict[str, Any]:
        if path == "/api/settings" and method == "POST":
            for op in body:
                if op["type"] == "clear":
                    for key in [k for k in self.rest_settings if k.startswith(op["prefix"])]:
                        del self.rest_settings[key]
                elif op["type"] == "insert":
                    for key, value in op["values"]:
                        full = f"{op['prefix']}.{key}" if op.get("prefix") else key
                        self.rest_settings[full] = value
            return {"data": None}
        if path == "/api/reload":
            # Parse errors come back inside data (management/reload.rs), HTTP 200.
            self.reloads += 1
            self.rest_applied = dict(self.rest_settings)
            return {"data": {"warnings": {}, "errors": rest_errors(self.rest_settings)}}
        if path == "/api/principal" and method == "POST":
            name = body["name"]
            if name in self.rest_principals:
                return {"error": "fieldAlreadyExists", "field": "name", "value": name}
            if body["type"] == "individual":
                domain = body["emails"][0].rsplit("@", 1)[1]
                if domain not in self.rest_principals:
                    return {"error": "notFound", "item": domain}
            self.rest_principals[name] = dict(body)
            return {"data": len(self.rest_principals)}
        if path.startswith("/api/principal/"):
            name = path.rsplit("/", 1)[1]
            if name not in self.rest_principals:
                return {"error": "notFound", "item": name}
            if method == "DELETE":
                del self.rest_principals[name]
            elif method == "PATCH":
                for change in body:
                    self.rest_principals[name][change["field"]] = change["value"]
            return {"data": None}
        if path.startswith("/api/principal") and method == "GET":
            return {"data": {"items": [], "total": len(self.rest_principals)}}
        if path.startswith("/api/logs"):
            return {"data": {"items": self.rest_logs, "total": len(self.rest_logs)}}
        raise KeyError(path)


def _patch(obj: dict[str, Any], path: str, value: Any) -> None:
    """A JMAP PatchObject path (RFC 8620 5.3): "a/b/c" sets obj[a][b][c]."""
    parts = path.split("/")
    target = obj
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            raise SetError("invalidPatch", f"no {part} in {path}", [parts[0]])
        target = nxt
    if value is None:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value


def _handler(fake: FakeStalwart) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _problem(self, status: int, type_: str, detail: str) -> None:
            self._send(
                status,
                {"type": type_, "title": type_, "status": status, "detail": detail},
                "application/problem+json",
            )

        def _credentials(self) -> tuple[str, str] | None:
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with fake._lock:
                if self.path == "/healthz/live":
                    return self._send(200, {"status": 200})
                if self.path == "/__restart":
                    fake.restart()
                    return self._send(200, {})
                if self.path == "/metrics/prometheus" and method == "GET":
                    status, text = fake.answer(self.headers.get("Authorization"))
                    data = text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                creds = self._credentials()
                if self.path.startswith("/api/"):
                    if creds is None or creds[0] != "admin" or not fake.fallback_login(creds[1]):
                        return self._problem(401, "about:blank", "You have to authenticate first.")
                    body = json.loads(raw) if raw else None
                    try:
                        return self._send(200, fake.rest(method, self.path, body))
                    except KeyError:
                        return self._problem(
                            404, "about:blank", "The requested resource does not exist."
                        )
                if self.path.rstrip("/") != "/jmap" or method != "POST":
                    return self._problem(
                        404, "about:blank", "The requested resource does not exist."
                    )
                if creds is None or not fake.login(*creds):
                    return self._problem(401, "about:blank", "You have to authenticate first.")
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    return self._problem(400, "urn:ietf:params:jmap:error:notJSON", "not JSON")
                try:
                    request = json.loads(raw)
                except ValueError:
                    return self._problem(400, "urn:ietf:params:jmap:error:notJSON", "not JSON")
                using = request.get("using") or []
                responses = []
                for name, args, call_id in request.get("methodCalls") or []:
                    if name.startswith("x:") and "urn:stalwart:jmap" not in using:
                        responses.append(["error", {"type": "unknownMethod"}, call_id])
                        continue
                    out_name, result = fake.call(name, args)
                    responses.append([out_name, result, call_id])
                return self._send(200, {"methodResponses": responses, "sessionState": "0"})

    return Handler
