"""The commands run on each server over SSH. Every one is idempotent (safe to re-run after a
partial failure) and takes its secrets as JSON on stdin, never on the command line: the command
line of a remote process is visible to every user of the host (`ps`). Nothing they print carries
a secret: pulumi-command keeps stdout/stderr in the stack state (C3 in the provisioning review).

Two generations (stacks/versions.py):
- `rest` (v0.12-v0.15): `/opt/stalwart`, `stalwart --init`, REST management under `/api` on
  127.0.0.1:8080. Errors come back as HTTP 200 `{"error": ...}` (management/mod.rs
  `ManagementApiError`), so the helper checks the body, not only the status.
- `jmap` (v0.16+): `/usr/local/bin/stalwart`, `/etc/stalwart/{config.json,stalwart.env}`,
  `/var/lib/stalwart`, `/var/log/stalwart` (v0.16 install.sh, docs/install/platform/linux.md); no
  `--init` (boot.rs); the admin is set through the recovery admin (`STALWART_RECOVERY_ADMIN`,
  docs/configuration/recovery-mode.md, never left set) and management is JMAP at `/jmap/`
  (capability.rs `api_url`) with `urn:stalwart:jmap`. Errors come back with HTTP 200 inside
  `methodResponses` (`["error", {...}]`) and `notCreated`/`notUpdated`/`notDestroyed`: the helper
  checks every one.

Both reach Stalwart on 127.0.0.1:8080 from the server itself, so the admin port never has to be
open to the internet. `PM_ROOT` (a path prefix) and `PM_STALWART_URL` exist only so that the tests
can run these very scripts under bash against a scratch root and a loopback fake; on a server both
are unset.
"""

import functools
import json
import shlex
from collections.abc import Mapping

from stacks.versions import generation

RELEASE_URL = "https://github.com/stalwartlabs/stalwart/releases/download"

# Shared by both installs: prerequisites, the hostname, the host firewall.
_PRELUDE = r"""set -eu
umask 077
R="${PM_ROOT:-}"
PAYLOAD=$(cat)
export DEBIAN_FRONTEND=noninteractive
if ! command -v curl >/dev/null || ! command -v python3 >/dev/null ||
  ! command -v openssl >/dev/null; then
  apt-get update -q && apt-get install -y -q curl python3 ca-certificates openssl
fi
manage() { printf '%s' "$PAYLOAD" | python3 -c "$PM_MANAGE" "$@"; }
hostnamectl set-hostname "$PM_HOSTNAME" 2>/dev/null || hostname "$PM_HOSTNAME"
if [ -n "${PM_FIREWALL:-}" ]; then
  # A host firewall where no cloud firewall stands in front (existing and Hostwinds servers):
  # only SSH, the mail ports and ICMP, the same set the Hetzner firewall opens (stacks/hetzner.py).
  if ! command -v nft >/dev/null; then apt-get update -q && apt-get install -y -q nftables; fi
  mkdir -p "$R/etc/nftables.d"
  printf '%s\n' "$PM_FIREWALL" > "$R/etc/nftables.d/penguinmails.nft"
  nft -f "$R/etc/nftables.d/penguinmails.nft"
  systemctl enable nftables.service >/dev/null 2>&1 || true
  if ! grep -qs 'nftables.d/penguinmails.nft' "$R/etc/nftables.conf"; then
    echo 'include "/etc/nftables.d/penguinmails.nft"' >> "$R/etc/nftables.conf"
  fi
fi
download() {
  ARCH="$(uname -m)-unknown-linux-gnu"
  TMP=$(mktemp -d)
  curl --proto '=https' --tlsv1.2 -fsSL -o "$TMP/stalwart.tar.gz" \
    "$PM_RELEASE_URL/$PM_VERSION/stalwart-$ARCH.tar.gz"
  tar xzf "$TMP/stalwart.tar.gz" -C "$TMP"
  id -u stalwart >/dev/null 2>&1 || useradd stalwart -s /usr/sbin/nologin -M -r -U
}
"""


def _unit(*service: str) -> str:
    """The systemd unit both generations install (they differ only in how Stalwart starts),
    written, enabled and (re)started."""
    return (
        """  mkdir -p "$R/etc/systemd/system"
  cat > "$R/etc/systemd/system/stalwart.service" <<'UNIT'
[Unit]
Description=Stalwart Mail Server
Conflicts=postfix.service sendmail.service exim4.service
After=network-online.target
[Service]
Type=simple
LimitNOFILE=65536
KillMode=process
KillSignal=SIGINT
Restart=on-failure
RestartSec=5
"""
        + "".join(line + "\n" for line in service)
        + """SyslogIdentifier=stalwart
User=stalwart
Group=stalwart
AmbientCapabilities=CAP_NET_BIND_SERVICE
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable stalwart.service >/dev/null
  systemctl restart stalwart.service
"""
    )


# v0.12-v0.15: into /opt/stalwart, once per version, then (re)applies hostname, ACME and the
# loopback bind of the plain-HTTP listener. stdin: {"admin_password": ...}
INSTALL_REST = (
    _PRELUDE
    + r"""
OPT="$R/opt/stalwart"
if [ "$(cat "$OPT/.penguinmails-version" 2>/dev/null || true)" != "$PM_VERSION" ]; then
  if [ -f "$R/etc/stalwart/config.json" ]; then
    echo "refusing $PM_VERSION: this server runs Stalwart 0.16+ (/etc/stalwart/config.json)," \
      "whose data 0.15 cannot read; pin it to a v0.16 release" >&2
    exit 3
  fi
  download
  mkdir -p "$OPT/bin" "$OPT/etc" "$OPT/data" "$OPT/logs"
  systemctl stop stalwart 2>/dev/null || true
  install -m 0755 "$TMP/stalwart" "$OPT/bin/stalwart"
  rm -rf "$TMP"
  if [ ! -f "$OPT/etc/config.toml" ]; then
    # The password reaches --init through its environment, never its arguments; --init prints
    # it on stderr (boot.rs quickstart), so both streams are silenced.
    STALWART_ADMIN_PASSWORD=$(printf '%s' "$PAYLOAD" | python3 -c \
      'import json,sys; print(json.load(sys.stdin)["admin_password"])') \
      "$OPT/bin/stalwart" --init "$OPT" >/dev/null 2>&1
  fi
  chown -R stalwart:stalwart "$OPT"
"""
    + _unit("ExecStart=/opt/stalwart/bin/stalwart --config=/opt/stalwart/etc/config.toml")
    + r"""  echo "$PM_VERSION" > "$OPT/.penguinmails-version"
fi
set +e
manage check-admin "$PM_ARGS"
status=$?
set -e
if [ "$status" = 3 ]; then
  # The fallback admin's secret lives only in config.toml (--init wrote it, as sha512-crypt:
  # boot.rs quickstart). A rotated stalwartAdminPassword, or an adopted server whose admin is
  # unknown, is replaced there and read at the next start.
  PM_HASH=$(printf '%s' "$PAYLOAD" | python3 -c \
    'import json,sys; sys.stdout.write(json.load(sys.stdin)["admin_password"])' |
    openssl passwd -6 -stdin)
  PM_HASH="$PM_HASH" manage set-admin "$OPT/etc/config.toml"
  systemctl restart stalwart.service
  manage check-admin "$PM_ARGS"
elif [ "$status" != 0 ]; then
  exit "$status"
fi
manage configure "$PM_ARGS"
if [ ! -f "$OPT/.penguinmails-loopback" ]; then
  # The listener address is read at start: restart once after `configure` rebound it.
  systemctl restart stalwart.service
  touch "$OPT/.penguinmails-loopback"
fi
"""
)

# v0.16+: the 0.16 layout, the admin through the recovery admin, then configuration over JMAP.
# stdin: {"admin_password": ...}
INSTALL_JMAP = (
    _PRELUDE
    + r"""
ETC="$R/etc/stalwart"
ENV_FILE="$ETC/stalwart.env"
if [ -f "$R/opt/stalwart/etc/config.toml" ]; then
  echo "refusing $PM_VERSION: this server runs Stalwart" \
    "$(cat "$R/opt/stalwart/.penguinmails-version" 2>/dev/null || echo 0.12-0.15) from" \
    "/opt/stalwart; 0.16 needs an offline migration (UPGRADING/v0_16.md), never an in-place" \
    "upgrade: keep this server pinned to its version" >&2
  exit 3
fi
# stalwart.env, root:stalwart 0640 (v0.16 install.sh). With "recovery", it starts the server in
# recovery mode with the recovery admin; without, it holds neither (recovery-mode.md: "must not
# be left permanently set").
write_env() {
  manage env-file "$ENV_FILE.tmp" "$1"
  chown root:stalwart "$ENV_FILE.tmp"
  chmod 0640 "$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}
if [ "$(cat "$ETC/.penguinmails-version" 2>/dev/null || true)" != "$PM_VERSION" ]; then
  download
  mkdir -p "$R/usr/local/bin" "$ETC" "$R/var/lib/stalwart" "$R/var/log/stalwart"
  systemctl stop stalwart 2>/dev/null || true
  install -m 0755 "$TMP/stalwart" "$R/usr/local/bin/stalwart"
  rm -rf "$TMP"
  if [ ! -f "$ETC/config.json" ]; then
    # Only the data store (store/src/registry/local.rs reads a serde-tagged DataStore).
    printf '%s\n' '{"@type":"RocksDb","path":"/var/lib/stalwart/"}' > "$ETC/config.json"
  fi
  [ -f "$ENV_FILE" ] || write_env plain
  chown root:stalwart "$ETC" "$ETC/config.json"
  chmod 0750 "$ETC"
  chmod 0640 "$ETC/config.json"
  chown -R stalwart:stalwart "$R/var/lib/stalwart" "$R/var/log/stalwart"
"""
    + _unit(
        "EnvironmentFile=-/etc/stalwart/stalwart.env",
        "ExecStart=/usr/local/bin/stalwart --config=/etc/stalwart/config.json",
    )
    + r"""  echo "$PM_VERSION" > "$ETC/.penguinmails-version"
fi
systemctl start stalwart.service
set +e
manage check-admin "$PM_ARGS"
status=$?
set -e
if [ "$status" = 3 ]; then
  # No admin yet (a fresh install), a rotated password, or an adopted server: set it through
  # the recovery admin, then start normally again whatever happens.
  trap 'write_env plain; systemctl restart stalwart.service' EXIT
  write_env recovery
  systemctl restart stalwart.service
  manage admin "$PM_ARGS"
  write_env plain
  trap - EXIT
  systemctl restart stalwart.service
  manage check-admin "$PM_ARGS"
elif [ "$status" != 0 ]; then
  exit "$status"
fi
configured=$(manage configure "$PM_ARGS")
echo "$configured"
case "$configured" in
  *"listener rebound"*) systemctl restart stalwart.service ;;  # listeners bind at start
esac
"""
)

# A small management client run with `python3 -c`: argv = action, JSON arguments; stdin = JSON
# secrets. Actions: configure, domain, delete-domain, account, delete-account, throttle,
# delete-throttle.
MANAGE_REST = r"""
import base64, json, os, sys, time, urllib.error, urllib.request
action = sys.argv[1]
secrets = json.load(sys.stdin)
if action == "set-admin":
    # argv: set-admin CONFIG_TOML; the sha512-crypt hash in PM_HASH. Replaces the secret of
    # [authentication.fallback-admin] (a TOML literal string: the hash has no quote).
    path, hashed = sys.argv[2], os.environ["PM_HASH"].strip()
    if not hashed.startswith("$6$") or "'" in hashed:
        sys.exit("set-admin: not a sha512-crypt hash")
    lines = open(path).read().splitlines()
    out, section, done = [], None, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            if section == "[authentication.fallback-admin]" and not done:
                out.append("secret = '%s'" % hashed)
                done = True
            section = stripped
        elif section == "[authentication.fallback-admin]" and stripped.startswith("secret"):
            line, done = "secret = '%s'" % hashed, True
        out.append(line)
    if not done:
        if section != "[authentication.fallback-admin]":
            out += ["", "[authentication.fallback-admin]", 'user = "admin"']
        out.append("secret = '%s'" % hashed)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    sys.exit(0)
args = json.loads(sys.argv[2])
auth = "Basic " + base64.b64encode(("admin:" + secrets["admin_password"]).encode()).decode()
BASE = os.environ.get("PM_STALWART_URL") or "http://127.0.0.1:8080"

def call(method, path, body=None, ok=()):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", auth)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            reply = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        # 401/404/400 come as problem+json with a `detail` (jmap/src/api/mod.rs): keep it.
        try:
            problem = json.loads(exc.read() or b"{}")
        except ValueError:
            problem = {}
        detail = problem.get("detail") or problem.get("title") or ""
        sys.exit("stalwart %s %s failed: http %s %s" % (method, path, exc.code, detail))
    err = reply.get("error") if isinstance(reply, dict) else None
    if err and err not in ok:
        sys.exit("stalwart %s %s failed: %s %s" % (method, path, err, reply.get("details", "")))
    return reply

for _ in range(60):
    try:
        urllib.request.urlopen(BASE + "/healthz/live", timeout=5)
        break
    except Exception:
        time.sleep(2)
else:
    sys.exit("stalwart did not become live on " + BASE)

def settings(prefix, values):
    call("POST", "/api/settings", [
        {"type": "clear", "prefix": prefix + "."},
        {"type": "insert", "prefix": prefix, "values": values, "assert_empty": False},
    ])

def reload():
    # Parse errors come back inside data (reload.rs), not in `error`.
    data = call("GET", "/api/reload").get("data") or {}
    errors = data.get("errors") if isinstance(data, dict) else None
    if errors:
        sys.exit("stalwart reload failed: %s" % json.dumps(errors, sort_keys=True)[:500])

if action == "check-admin":
    req = urllib.request.Request(BASE + "/api/principal?limit=1")
    req.add_header("Authorization", auth)
    try:
        urllib.request.urlopen(req, timeout=30).read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            sys.stderr.write("stalwart: the admin password is refused\n")
            sys.exit(3)
        sys.exit("stalwart GET /api/principal failed: http %s" % exc.code)
elif action == "configure":
    host = args["hostname"]
    # server.listener.http.bind is a local key (written to config.toml): the plain-HTTP admin
    # listener answers on loopback only, whatever firewall stands in front.
    call("POST", "/api/settings", [{"type": "insert", "prefix": None, "assert_empty": False,
        "values": [["server.hostname", host], ["lookup.default.hostname", host],
                   ["server.listener.http.bind", "127.0.0.1:8080"]]}])
    settings("acme.letsencrypt", [
        ["directory", "https://acme-v02.api.letsencrypt.org/directory"],
        ["challenge", "tls-alpn-01"], ["contact", args["acme_email"]],
        ["domains", args["hostname"]], ["default", "true"], ["renew-before", "30d"]])
    # Prometheus metrics, for the probes' delivery counters (probes/delivery.py), behind the
    # admin's Basic credentials (config/telemetry.rs `metrics.prometheus.*`).
    settings("metrics.prometheus", [["enable", "true"], ["auth.username", "admin"],
        ["auth.secret", secrets["admin_password"]]])
    reload()
elif action == "domain":
    call("POST", "/api/principal", {"type": "domain", "name": args["domain"]},
         ok=("fieldAlreadyExists",))
    algo = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}[args["algorithm"]]
    # Ids end in the domain, and auth.rs groups signature keys by walking sorted keys, so
    # "rsa-example.com" next to "rsa-example.com.au" mixed the two; "pm-" + domain + "-" + algo
    # never prefixes another domain's id. The other algorithm's signature (and the old id
    # scheme) is removed, so a changed dkimAlgorithm leaves nothing signing with the old key.
    def clear(prefix):
        call("POST", "/api/settings", [{"type": "clear", "prefix": prefix}])
    for old in ("rsa", "ed25519"):
        clear("signature.%s-%s." % (old, args["domain"]))
        if old != args["algorithm"]:
            clear("signature.pm-%s-%s." % (args["domain"], old))
    settings("signature.pm-%s-%s" % (args["domain"], args["algorithm"]), [
        ["algorithm", algo], ["domain", args["domain"]], ["selector", args["selector"]],
        ["private-key", secrets["dkim_private_key"]], ["canonicalization", "relaxed/relaxed"],
        ["headers.0", "From"], ["headers.1", "To"], ["headers.2", "Date"],
        ["headers.3", "Subject"], ["headers.4", "Message-ID"], ["report", "false"]])
    reload()
elif action == "delete-domain":
    for old in ("rsa", "ed25519"):
        for prefix in ("signature.%s-%s." % (old, args["domain"]),
                       "signature.pm-%s-%s." % (args["domain"], old)):
            call("POST", "/api/settings", [{"type": "clear", "prefix": prefix}])
    call("DELETE", "/api/principal/" + args["domain"], ok=("notFound",))
elif action == "account":
    quota = args["quota_mb"] * 1024 * 1024
    created = call("POST", "/api/principal", {"type": "individual", "name": args["address"],
        "description": args.get("display_name") or "", "secrets": [secrets["password"]],
        "emails": [args["address"]], "quota": quota, "roles": ["user"]}, ok=("fieldAlreadyExists",))
    if created.get("error"):
        call("PATCH", "/api/principal/" + args["address"], [
            {"action": "set", "field": "secrets", "value": [secrets["password"]]},
            {"action": "set", "field": "quota", "value": quota},
            {"action": "set", "field": "description", "value": args.get("display_name") or ""}])
elif action == "delete-account":
    call("DELETE", "/api/principal/" + args["address"], ok=("notFound",))
elif action in ("throttle", "delete-throttle"):
    # queue.limiter.outbound.<id>.{enable,key,match,rate}: the sender's daily cap.
    if action == "throttle":
        settings(args["prefix"], args["values"])
    else:
        call("POST", "/api/settings", [{"type": "clear", "prefix": args["prefix"] + "."}])
    reload()
else:
    sys.exit("unknown action " + action)
print("ok", action)
"""

# The same actions for v0.16+ over JMAP, plus the install's own: env-file, check-admin (exit 3
# when the admin is refused), admin (as the recovery admin: the server's own domain and the
# admin account with the configured password). Method names, object shapes and the encoding
# (lists as {"0": ...}, sets as {member: true}, sizes in bytes) follow the v0.16 registry schema
# and docs/configuration/object-encoding.md; see docs/stacks.md for each fact's source.
MANAGE_JMAP = r"""
import base64, json, os, sys, time, urllib.error, urllib.request
secrets = json.load(sys.stdin)
action = sys.argv[1]
if action == "env-file":
    # argv: env-file PATH plain|recovery. systemd EnvironmentFile syntax: double quotes with
    # backslash escapes, so any password survives.
    def q(value):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
    lines = []
    if sys.argv[3] == "recovery":
        lines += ["STALWART_RECOVERY_MODE=1",
                  "STALWART_RECOVERY_ADMIN=" + q("admin:" + secrets["admin_password"])]
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as out:
        out.write("".join(line + "\n" for line in lines))
    sys.exit(0)

args = json.loads(sys.argv[2])
BASE = os.environ.get("PM_STALWART_URL") or "http://127.0.0.1:8080"
USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
RECOVERY = action == "admin"
user = "admin" if RECOVERY else "admin@" + args["admin_domain"]
auth = "Basic " + base64.b64encode((user + ":" + secrets["admin_password"]).encode()).decode()

def fail(message, code=1):
    sys.stderr.write("stalwart: " + message + "\n")
    sys.exit(code)

for _ in range(60):
    try:
        urllib.request.urlopen(BASE + "/healthz/live", timeout=5)
        break
    except Exception:
        time.sleep(2)
else:
    fail("did not become live on " + BASE)

def jmap(*calls):
    # POST /jmap/ (capability.rs api_url), application/json (request.rs rejects anything else).
    body = {"using": USING, "methodCalls": [[m, a, "c%d" % i] for i, (m, a) in enumerate(calls)]}
    req = urllib.request.Request(BASE + "/jmap/", data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", auth)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            reply = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            problem = json.loads(exc.read() or b"{}")
        except ValueError:
            problem = {}
        detail = problem.get("detail") or problem.get("type") or ""
        code = 3 if exc.code == 401 else 1
        fail("http %s from /jmap/ as %s: %s" % (exc.code, user, detail), code)
    out = []
    for (method, _), response in zip(calls, reply.get("methodResponses", [])):
        name, result = response[0], response[1]
        if name == "error":
            fail("%s failed: %s %s" % (method, result.get("type"), result.get("description", "")))
        for kind in ("notCreated", "notUpdated", "notDestroyed"):
            for key, err in (result.get(kind) or {}).items():
                fail("%s %s %s: %s %s %s" % (method, kind, key, err.get("type"),
                     err.get("description", ""), ",".join(err.get("properties") or [])))
        out.append(result)
    if len(out) != len(calls):
        fail("short JMAP reply: %d of %d method responses" % (len(out), len(calls)))
    return out

def find(kind, filter):
    return jmap(["x:%s/query" % kind, {"filter": filter}])[0].get("ids") or []

def created_id(result, key):
    return result["created"][key]["id"]

def domain_id(name, create=None):
    ids = find("Domain", {"name": name})
    if ids:
        return ids[0]
    if create is None:
        fail("domain %s does not exist on this server" % name)
    obj = {"name": name, "aliases": {}, "certificateManagement": {"@type": "Manual"},
           "dkimManagement": {"@type": "Manual"}, "dnsManagement": {"@type": "Manual"},
           "subAddressing": {"@type": "Enabled"}}
    obj.update(create)
    return created_id(jmap(["x:Domain/set", {"create": {"d": obj}}])[0], "d")

def password_update(account, password):
    # Only one Password credential is allowed (mapping/principal.rs); rotate its secret in place.
    got = jmap(["x:Account/get", {"ids": [account], "properties": ["credentials"]}])[0]
    credentials = (got.get("list") or [{}])[0].get("credentials") or {}
    for key, cred in credentials.items():
        if cred.get("@type") == "Password":
            return {"credentials/%s/secret" % key: password}
    return {"credentials/%d" % len(credentials): {"@type": "Password", "secret": password}}

def upsert_account(local, dom, password, extra):
    ids = find("Account", {"name": local, "domainId": dom})
    if not ids:
        obj = {"@type": "User", "name": local, "domainId": dom,
               "credentials": {"0": {"@type": "Password", "secret": password}},
               "roles": {"@type": "User"}, "permissions": {"@type": "Inherit"},
               "aliases": {}, "memberGroupIds": {}, "encryptionAtRest": {"@type": "Disabled"}}
        obj.update(extra)
        return created_id(jmap(["x:Account/set", {"create": {"a": obj}}])[0], "a")
    patch = password_update(ids[0], password)
    patch.update(extra)
    jmap(["x:Account/set", {"update": {ids[0]: patch}}])
    return ids[0]

if action == "check-admin":
    jmap(["x:SystemSettings/get", {"ids": ["singleton"]}])
elif action == "admin":
    # As the recovery admin: the server's own domain, then admin@<it> with the Admin role.
    dom = domain_id(args["admin_domain"], create={})
    upsert_account("admin", dom, secrets["admin_password"],
                   {"roles": {"@type": "Admin"}, "description": "PenguinMails administrator"})
    jmap(["x:SystemSettings/set", {"update": {"singleton": {
        "defaultHostname": args["hostname"], "defaultDomainId": dom}}}])
elif action == "configure":
    jmap(["x:SystemSettings/set", {"update": {"singleton": {"defaultHostname": args["hostname"]}}}])
    # The plain-HTTP listener (`http`, [::]:8080 by default: manager/defaults.rs) serves the
    # management API; bind it to loopback, where this script reaches it. `bind` is a
    # Map<SocketAddr>, {"addr": true} (registry types/map.rs). A listener change needs a restart,
    # which the install does when this prints "listener rebound".
    local = {"127.0.0.1:8080": True}
    for item in jmap(["x:NetworkListener/get", {"ids": None}])[0].get("list") or []:
        if item.get("name") == "http" and item.get("bind") != local:
            jmap(["x:NetworkListener/set", {"update": {item["id"]: {"bind": local}}}])
            print("listener rebound", item["id"])
    contact = {args["acme_email"]: True}
    acme = find("AcmeProvider", {})
    if acme:
        jmap(["x:AcmeProvider/set", {"update": {acme[0]: {"contact": contact}}}])
        provider = acme[0]
    else:
        provider = created_id(jmap(["x:AcmeProvider/set", {"create": {"acme": {
            "challengeType": "TlsAlpn01", "contact": contact}}}])[0], "acme")
    dom = domain_id(args["admin_domain"], create={})
    jmap(["x:Domain/set", {"update": {dom: {"certificateManagement": {
        "@type": "Automatic", "acmeProviderId": provider, "subjectAlternativeNames": {}}}}}])
    # Prometheus metrics, for the probes' delivery counters (probes/delivery.py), behind this
    # admin's Basic credentials (structs.rs `Metrics.prometheus`), in force after the reload.
    jmap(["x:Metrics/set", {"update": {"singleton": {"prometheus": {"@type": "Enabled",
          "authUsername": user, "authSecret": {"@type": "Value",
          "secret": secrets["admin_password"]}}}}}],
         ["x:Action/set", {"create": {"reload": {"@type": "ReloadSettings"}}}])
elif action == "domain":
    dom = domain_id(args["domain"], create={})
    kind = {"rsa": "Dkim1RsaSha256", "ed25519": "Dkim1Ed25519Sha256"}[args["algorithm"]]
    # One signature per domain: the old ones (another algorithm or selector, or this one with
    # an older key) go first, in the same request, then ours is created with our private key.
    old = find("DkimSignature", {"domainId": dom})
    calls = []
    if old:
        calls.append(["x:DkimSignature/set", {"destroy": old}])
    calls.append(["x:DkimSignature/set", {"create": {"k": {
        "@type": kind, "domainId": dom, "selector": args["selector"],
        "privateKey": {"@type": "Text", "secret": secrets["dkim_private_key"]}}}}])
    jmap(*calls)
elif action == "delete-domain":
    ids = find("Domain", {"name": args["domain"]})
    if ids:
        old = find("DkimSignature", {"domainId": ids[0]})
        if old:
            jmap(["x:DkimSignature/set", {"destroy": old}])
        jmap(["x:Domain/set", {"destroy": ids}])
elif action == "account":
    local, dom_name = args["address"].rsplit("@", 1)
    upsert_account(local, domain_id(dom_name), secrets["password"], {
        "description": args.get("display_name") or "",
        "quotas": {"maxDiskQuota": args["quota_mb"] * 1024 * 1024}})
elif action == "delete-account":
    local, dom_name = args["address"].rsplit("@", 1)
    doms = find("Domain", {"name": dom_name})
    ids = find("Account", {"name": local, "domainId": doms[0]}) if doms else []
    if ids:
        jmap(["x:Account/set", {"destroy": ids}])
elif action in ("throttle", "delete-throttle"):
    # x:MtaOutboundThrottle: ours found by description and replaced whole, then ReloadSettings
    # in the same request: a registry write alone leaves the running queue config as it was
    # (v0.16.18 jmap/src/registry/mapping/action.rs is what calls reload_registry).
    found = jmap(["x:MtaOutboundThrottle/get", {"ids": None, "properties": ["description"]}])
    ours = [o["id"] for o in found[0].get("list") or []
            if o.get("description") == args["description"]]
    change = {"destroy": ours} if ours else {}
    if action == "throttle":
        change["create"] = {"cap": args["object"]}
    if change:
        jmap(["x:MtaOutboundThrottle/set", change],
             ["x:Action/set", {"create": {"reload": {"@type": "ReloadSettings"}}}])
else:
    fail("unknown action " + action)
print("ok", action)
"""


def manage_script(version: str) -> str:
    return MANAGE_JMAP if generation(version) == "jmap" else MANAGE_REST


def manage_args(version: str, hostname: str, args: Mapping[str, object]) -> dict[str, object]:
    """JMAP actions authenticate as admin@<the server's hostname> (v0.16 accounts are email
    shaped); the REST ones as the fallback admin `admin`."""
    if generation(version) == "jmap":
        return {**args, "admin_domain": hostname}
    return dict(args)


@functools.lru_cache(maxsize=8)
def _quoted_manage_script(version: str) -> str:
    """The quoted management script, once per version: quoting its ~10 KB per command was a
    share of a fleet's evaluation."""
    return shlex.quote(manage_script(version))


def manage(action: str, args: Mapping[str, object], version: str = "", hostname: str = "") -> str:
    """The shell command that runs one management action (no secrets: those go on stdin)."""
    from stacks.versions import DEFAULT_VERSION

    version = version or DEFAULT_VERSION
    if generation(version) == "jmap" and not hostname:
        raise ValueError("JMAP management needs the server's hostname")
    return " ".join(
        [
            "python3",
            "-c",
            _quoted_manage_script(version),
            action,
            shlex.quote(json.dumps(manage_args(version, hostname, args), sort_keys=True)),
        ]
    )


def install(version: str, hostname: str, acme_email: str, firewall: str = "") -> str:
    configure = json.dumps(
        manage_args(version, hostname, {"hostname": hostname, "acme_email": acme_email}),
        sort_keys=True,
    )
    env = {
        "PM_VERSION": version,
        "PM_HOSTNAME": hostname,
        "PM_RELEASE_URL": RELEASE_URL,
        "PM_MANAGE": manage_script(version),
        "PM_ARGS": configure,
        "PM_FIREWALL": firewall,
    }
    script = INSTALL_JMAP if generation(version) == "jmap" else INSTALL_REST
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} bash -c {shlex.quote(script)}"


def as_root(command: str, user: str) -> str:
    """Non-root SSH users (existing servers) need passwordless sudo; stdin passes through."""
    return command if user == "root" else f"sudo -n {command}"


def nftables(tcp_ports: tuple[int, ...], ssh_port: int = 22) -> str:
    """The host firewall of a server no cloud firewall protects: inbound SSH, the given tcp
    ports and ICMP; everything else dropped (8080 included: the admin listener stays local)."""
    ports = ", ".join(str(p) for p in sorted({ssh_port, *tcp_ports}))
    return "\n".join(
        [
            "table inet penguinmails",
            "delete table inet penguinmails",
            "table inet penguinmails {",
            "  chain input {",
            "    type filter hook input priority 0; policy drop;",
            "    iif lo accept",
            "    ct state established,related accept",
            "    ct state invalid drop",
            "    meta l4proto { icmp, ipv6-icmp } accept",
            f"    tcp dport {{ {ports} }} accept",
            "  }",
            "}",
        ]
    )
