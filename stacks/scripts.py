"""The commands run on each server over SSH. Every one is idempotent (safe to re-run after a
partial failure) and takes its secrets as JSON on stdin, never on the command line: the command
line of a remote process is visible to every user of the host (`ps`).

Management talks to Stalwart's REST API (v0.12-v0.15) on 127.0.0.1:8080 from the server itself,
so the admin port never has to be opened to the internet. The API answers HTTP 200 with
`{"error": ...}` on failure: the helper checks the body, not only the status.
"""

import json
import shlex
from collections.abc import Mapping

# Installs the pinned release into /opt/stalwart (the v0.12-v0.15 layout), once per version, then
# (re)applies hostname and ACME settings. stdin: {"admin_password": ...}
INSTALL = r"""set -eu
umask 077
PAYLOAD=$(cat)
export DEBIAN_FRONTEND=noninteractive
command -v curl >/dev/null && command -v python3 >/dev/null || {
  apt-get update -q && apt-get install -y -q curl python3 ca-certificates; }
hostnamectl set-hostname "$PM_HOSTNAME" 2>/dev/null || hostname "$PM_HOSTNAME"
if [ "$(cat /opt/stalwart/.penguinmails-version 2>/dev/null || true)" != "$PM_VERSION" ]; then
  ARCH="$(uname -m)-unknown-linux-gnu"
  TMP=$(mktemp -d)
  curl --proto '=https' --tlsv1.2 -fsSL -o "$TMP/stalwart.tar.gz" \
    "https://github.com/stalwartlabs/stalwart/releases/download/$PM_VERSION/stalwart-$ARCH.tar.gz"
  tar xzf "$TMP/stalwart.tar.gz" -C "$TMP"
  id -u stalwart >/dev/null 2>&1 || useradd stalwart -s /usr/sbin/nologin -M -r -U
  mkdir -p /opt/stalwart/bin /opt/stalwart/etc /opt/stalwart/data /opt/stalwart/logs
  systemctl stop stalwart 2>/dev/null || true
  install -m 0755 "$TMP/stalwart" /opt/stalwart/bin/stalwart
  rm -rf "$TMP"
  if [ ! -f /opt/stalwart/etc/config.toml ]; then
    # The admin password reaches --init through its environment, never its arguments.
    STALWART_ADMIN_PASSWORD=$(printf '%s' "$PAYLOAD" | python3 -c \
      'import json,sys; print(json.load(sys.stdin)["admin_password"])') \
      /opt/stalwart/bin/stalwart --init /opt/stalwart >/dev/null
  fi
  chown -R stalwart:stalwart /opt/stalwart
  cat > /etc/systemd/system/stalwart.service <<'UNIT'
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
ExecStart=/opt/stalwart/bin/stalwart --config=/opt/stalwart/etc/config.toml
SyslogIdentifier=stalwart
User=stalwart
Group=stalwart
AmbientCapabilities=CAP_NET_BIND_SERVICE
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable stalwart.service >/dev/null
  systemctl restart stalwart.service
  echo "$PM_VERSION" > /opt/stalwart/.penguinmails-version
fi
printf '%s' "$PAYLOAD" | python3 -c "$PM_MANAGE" configure "$PM_ARGS"
"""

# A small management client run with `python3 -c`: argv = action, JSON arguments; stdin = JSON
# secrets. Actions: configure, domain, delete-domain, account, delete-account, throttle,
# delete-throttle.
MANAGE = r"""
import base64, json, sys, time, urllib.error, urllib.request
action, args = sys.argv[1], json.loads(sys.argv[2])
secrets = json.load(sys.stdin)
auth = "Basic " + base64.b64encode(("admin:" + secrets["admin_password"]).encode()).decode()
BASE = "http://127.0.0.1:8080"

def call(method, path, body=None, ok=()):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", auth)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            reply = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        reply = {"error": "http %s" % exc.code}
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
    sys.exit("stalwart did not become live on 127.0.0.1:8080")

def settings(prefix, values):
    call("POST", "/api/settings", [
        {"type": "clear", "prefix": prefix + "."},
        {"type": "insert", "prefix": prefix, "values": values, "assert_empty": False},
    ])

if action == "configure":
    host = args["hostname"]
    call("POST", "/api/settings", [{"type": "insert", "prefix": None, "assert_empty": False,
        "values": [["server.hostname", host], ["lookup.default.hostname", host]]}])
    settings("acme.letsencrypt", [
        ["directory", "https://acme-v02.api.letsencrypt.org/directory"],
        ["challenge", "tls-alpn-01"], ["contact", args["acme_email"]],
        ["domains", args["hostname"]], ["default", "true"], ["renew-before", "30d"]])
    call("GET", "/api/reload")
elif action == "domain":
    call("POST", "/api/principal", {"type": "domain", "name": args["domain"]},
         ok=("fieldAlreadyExists",))
    algo = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}[args["algorithm"]]
    settings("signature.%s-%s" % (args["algorithm"], args["domain"]), [
        ["algorithm", algo], ["domain", args["domain"]], ["selector", args["selector"]],
        ["private-key", secrets["dkim_private_key"]], ["canonicalization", "relaxed/relaxed"],
        ["headers.0", "From"], ["headers.1", "To"], ["headers.2", "Date"],
        ["headers.3", "Subject"], ["headers.4", "Message-ID"], ["report", "false"]])
    call("GET", "/api/reload")
elif action == "delete-domain":
    prefix = "signature.%s-%s." % (args["algorithm"], args["domain"])
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
elif action in ("throttle", "delete-throttle") and args["generation"] == "rest":
    # v0.12-v0.15: queue.limiter.outbound.<id>.{enable,key,match,rate}
    if action == "throttle":
        settings(args["prefix"], args["values"])
    else:
        call("POST", "/api/settings", [{"type": "clear", "prefix": args["prefix"] + "."}])
    call("GET", "/api/reload")
elif action in ("throttle", "delete-throttle"):
    # v0.16: x:MtaOutboundThrottle objects, ours found by description, replaced whole.
    api = call("GET", "/.well-known/jmap")["apiUrl"]
    api = api.split("://", 1)[-1].split("/", 1)[-1]
    def jmap(calls):
        return call("POST", "/" + api, {"using": ["urn:ietf:params:jmap:core",
            "urn:stalwart:jmap"], "methodCalls": calls})
    found = jmap([["x:MtaOutboundThrottle/query", {"filter": {}}, "q"],
        ["x:MtaOutboundThrottle/get", {"#ids": {"resultOf": "q", "name":
            "x:MtaOutboundThrottle/query", "path": "/ids"}, "properties": ["description"]}, "g"]])
    ours = [o["id"] for o in found["methodResponses"][1][1].get("list", [])
            if o.get("description") == args["description"]]
    change = {"destroy": ours}
    if action == "throttle":
        change["create"] = {"cap": args["object"]}
    jmap([["x:MtaOutboundThrottle/set", change, "s"]])
else:
    sys.exit("unknown action " + action)
print("ok", action)
"""


def manage(action: str, args: Mapping[str, object]) -> str:
    """The shell command that runs one management action (no secrets: those go on stdin)."""
    return " ".join(
        [
            "python3",
            "-c",
            shlex.quote(MANAGE),
            action,
            shlex.quote(json.dumps(args, sort_keys=True)),
        ]
    )


def install(version: str, hostname: str, acme_email: str) -> str:
    configure = json.dumps({"hostname": hostname, "acme_email": acme_email}, sort_keys=True)
    env = {
        "PM_VERSION": version,
        "PM_HOSTNAME": hostname,
        "PM_MANAGE": MANAGE,
        "PM_ARGS": configure,
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} bash -c {shlex.quote(INSTALL)}"


def as_root(command: str, user: str) -> str:
    """Non-root SSH users (existing servers) need passwordless sudo; stdin passes through."""
    return command if user == "root" else f"sudo -n {command}"
