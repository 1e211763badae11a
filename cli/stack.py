"""stack preview|outputs|ssh-key|preflight WORKSPACE: what an `up` of a workspace's stack would
change, its outputs, the SSH public key its servers must trust, and whether the live engine can
run it (WORKSPACE is the workspace id or its stack name); `stack validate --config-file F`: a
hand-written stack config checked the way the program checks it, without the Pulumi CLI."""

import argparse
import json
import sys
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cli.processes import prepare
from database.models.workspaces import Workspace
from database.session import session_scope
from kit.errors import NotFound


def find_workspace(session: Session, ref: str) -> Workspace:
    try:
        where = Workspace.id == uuid.UUID(ref)
    except ValueError:
        where = Workspace.stack_name == ref
    workspace = session.scalars(select(Workspace).where(where)).first()
    if workspace is None:
        raise NotFound(f"no workspace with id or stack name {ref!r}", field="workspace")
    return workspace


def _preview(args: argparse.Namespace) -> int:
    from automation.desired_state import build_fleet_config
    from automation.engines import engine_for

    prepare()
    # A short transaction for the desired state; none is held while the engine runs.
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        config = build_fleet_config(session, workspace)
        engine = engine_for(workspace)
        stack_name = workspace.stack_name
    progress = None if args.json else (lambda line: print(line, file=sys.stderr))
    result = engine.preview(stack_name, config, on_event=progress)
    if args.json:
        print(
            json.dumps(
                {
                    "stack": stack_name,
                    "engine": engine.name,
                    "changes": [c.as_dict() for c in result.changes],
                    "summary": result.summary,
                }
            )
        )
        return 0
    print(f"stack {stack_name} ({engine.name} engine)")
    for change in result.changes:
        print(f"  {change}")
    counts = ", ".join(f"{n} to {op}" for op, n in result.summary.items() if n and op != "same")
    print(f"{counts or 'no changes'}; {result.summary.get('same', 0)} unchanged")
    return 0


def _outputs(args: argparse.Namespace) -> int:
    from automation.engines import engine_for

    prepare()
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        engine = engine_for(workspace)
        stack_name = workspace.stack_name
    print(json.dumps(engine.outputs(stack_name), indent=2, sort_keys=True))
    return 0


def _ssh_key(args: argparse.Namespace) -> int:
    prepare()
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        public = workspace.ssh_public_key or ""
    # The line for ~/.ssh/authorized_keys of an existing server's ssh_user.
    print(public)
    return 0


def _preflight(args: argparse.Namespace) -> int:
    from domain.hosts import backends
    from domain.workspaces import preflight
    from domain.workspaces import service as workspaces
    from settings import get_settings

    prepare()
    settings = get_settings()
    with session_scope() as session:
        workspace = find_workspace(session, args.workspace)
        providers = workspaces.providers(session, workspace)
        sandbox = workspace.sandbox
        finding = backends.deployment_finding(session, settings)
    report = preflight.check(settings, providers, sandbox=sandbox, hosts=finding)
    if args.json:
        print(report.model_dump_json())
    else:
        print(f"{report.engine} engine: {'ready' if report.ready else 'NOT ready'}")
        for c in report.checks:
            setting = f" [{c.setting}]" if c.setting else ""
            print(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}{setting}")
    return 0 if report.ready else 1


# stack validate ---------------------------------------------------------------------------

# Stand-ins for encrypted (`secure:`) values: they pass the program's own checks, so every other
# key is still checked; the report says which secrets could not be read.
_PLACEHOLDER_PEM = "-----BEGIN PRIVATE KEY-----\nencrypted\n-----END PRIVATE KEY-----\n"
_PLACEHOLDERS = {
    "stalwartAdminPassword": "encrypted-placeholder-password",
    "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nencrypted\n",
    "dkimPrivateKeys": _PLACEHOLDER_PEM,
    "mailboxPasswords": "encrypted-placeholder-password",
    "hetznerToken": "encrypted",
    "hostwindsApiKey": "encrypted",
}


def _secret_path(key: str) -> tuple[str, str | None]:
    """'penguinmails:dkimPrivateKeys["example.com"]' -> ("dkimPrivateKeys", "example.com")."""
    import re

    match = re.fullmatch(r'(?:penguinmails:)?(\w+)(?:\["([^"]+)"\])?', key.strip())
    if match is None:
        raise ValueError(f"not a stack config key: {key!r}")
    return match.group(1), match.group(2)


_PER_ITEM = {"dkimPrivateKeys": ("domains", "name"), "mailboxPasswords": ("mailboxes", "address")}


def load_stack_file(
    text: str, secrets: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The `penguinmails:*` values of a Pulumi.<stack>.yaml, with `secrets` (key in `pulumi
    config set --path` form -> value) laid over it. Returns (values as the program gets them,
    secrets present but encrypted, secrets given in clear in the file)."""
    import yaml

    from stacks.config import NS

    doc = yaml.safe_load(text) or {}
    config = dict(doc.get("config") or {})
    encrypted: list[str] = []
    in_clear: list[str] = []
    values: dict[str, Any] = {}
    for full, value in config.items():
        if not str(full).startswith(f"{NS}:"):
            continue
        values[full] = _file_value(config, full, value, encrypted, in_clear)
    _lay_secrets(values, secrets or {}, encrypted)
    # Objects reach the program as JSON text (what Pulumi hands it).
    out = {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    return out, encrypted, in_clear


def _file_value(
    config: dict[str, Any], full: str, value: Any, encrypted: list[str], in_clear: list[str]
) -> Any:
    """One key's value as the program gets it: an encrypted one is a stand-in (noted in
    `encrypted`), a secret in clear is kept and noted in `in_clear`."""
    from stacks.config import SECRET_KEYS

    key = str(full).split(":", 1)[1]
    if isinstance(value, dict) and set(value) == {"secure"}:
        encrypted.append(full)
        return _encrypted_stand_in(config, key)
    if key in _PER_ITEM and isinstance(value, dict):
        return _per_item_secrets(full, key, value, encrypted, in_clear)
    if key in SECRET_KEYS:
        in_clear.append(full)
    return value


def _encrypted_stand_in(config: dict[str, Any], key: str) -> Any:
    """The stand-in for a wholly encrypted value: for the per-domain / per-mailbox objects,
    one stand-in per domain / mailbox the file lists."""
    from stacks.config import NS

    if key not in _PER_ITEM:
        return _PLACEHOLDERS.get(key, "encrypted")
    listing, field = _PER_ITEM[key]
    listed = config.get(f"{NS}:{listing}")
    return {
        str(item.get(field, "")).lower(): _PLACEHOLDERS[key]
        for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict)
    }


def _per_item_secrets(
    full: str, key: str, value: dict[str, Any], encrypted: list[str], in_clear: list[str]
) -> dict[str, Any]:
    """A per-domain / per-mailbox object whose items are each encrypted or in clear."""
    inner = {}
    for name, item in value.items():
        if isinstance(item, dict) and set(item) == {"secure"}:
            encrypted.append(f'{full}["{name}"]')
            item = _PLACEHOLDERS[key]
        else:
            in_clear.append(f'{full}["{name}"]')
        inner[name] = item
    return inner


def _lay_secrets(values: dict[str, Any], secrets: dict[str, str], encrypted: list[str]) -> None:
    """Lay the given secrets over the file's values; one given is no longer unreadable."""
    from stacks.config import NS

    for given, secret in secrets.items():
        key, sub = _secret_path(given)
        full = f"{NS}:{key}"
        if sub is None:
            values[full] = secret
            label = full
        else:
            current = values.get(full)
            values[full] = {**(current if isinstance(current, dict) else {}), sub: secret}
            label = f'{full}["{sub}"]'
        if label in encrypted:
            encrypted.remove(label)


def dkim_public_of(private_pem: str) -> tuple[str, str]:
    """(algorithm, p= value) of a PEM private key, as `keys dkim` prints them."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return "ed25519", base64.b64encode(raw).decode()
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "rsa", base64.b64encode(der).decode()
    raise ValueError("not an RSA or Ed25519 key")


def check_stack_file(text: str, secrets: dict[str, str] | None = None) -> list[str]:
    """Report lines; raises `stacks.config.ConfigError` naming the key at fault."""
    from stacks.config import NS, ConfigError, FleetConfig

    values, encrypted, in_clear = load_stack_file(text, secrets)
    config = FleetConfig.from_stack_config(values)
    if config.servers:
        for key in ("stalwartAdminPassword", "sshPrivateKey"):
            if f"{NS}:{key}" not in values:
                raise ConfigError(f"{NS}:{key}", "missing (set it with pulumi config set --secret)")
    encrypted_set = set(encrypted)
    for i, domain in enumerate(config.domains):
        label = f'{NS}:dkimPrivateKeys["{domain.name}"]'
        if label in encrypted_set or f"{NS}:dkimPrivateKeys" in encrypted_set:
            continue
        try:
            algorithm, public = dkim_public_of(domain.dkim_private_key)
        except ValueError as exc:
            raise ConfigError(label, f"cannot be read as a PEM private key ({exc})") from None
        if algorithm != domain.dkim_algorithm:
            raise ConfigError(
                f"{NS}:domains[{i}].dkimAlgorithm",
                f"is {domain.dkim_algorithm}, but the private key is {algorithm}",
            )
        if "".join(domain.dkim_public_key.split()) != public:
            raise ConfigError(f"{NS}:domains[{i}].dkimPublicKey", "does not match its private key")
    report = [
        f"ok: {len(config.servers)} server(s), {len(config.domains)} domain(s), "
        f"{len(config.mailboxes)} mailbox(es); every key checked"
    ]
    if encrypted:
        report.append(
            "encrypted, present but not readable without the Pulumi CLI (pass --secret "
            "KEY=FILE to check one): " + ", ".join(sorted(encrypted))
        )
    if in_clear:
        report.append(
            "warning: secrets in clear in the file (set them with pulumi config set --secret): "
            + ", ".join(sorted(in_clear))
        )
    return report


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stacks.config import ConfigError

    secrets = {}
    for item in args.secret or []:
        key, sep, path = item.partition("=")
        if not sep:
            print(f"penguinmails: error: --secret {item!r}: use KEY=FILE", file=sys.stderr)
            return 2
        secrets[key] = Path(path).read_text().rstrip("\n")
    try:
        report = check_stack_file(Path(args.config_file).read_text(), secrets)
    except ConfigError as exc:
        print(f"penguinmails: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"penguinmails: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report))
    return 0


def register(sub: Any) -> None:
    stack = sub.add_parser("stack", help="inspect a workspace's Pulumi stack")
    ssub = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    p = ssub.add_parser("preview", help="print what an `up` would change (nothing is changed)")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_preview)
    p = ssub.add_parser("outputs", help="print the stack's last outputs as JSON")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.set_defaults(handler=_outputs)
    p = ssub.add_parser("ssh-key", help="print the SSH public key the workspace's servers trust")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.set_defaults(handler=_ssh_key)
    p = ssub.add_parser("preflight", help="check the live engine can run the workspace")
    p.add_argument("workspace", help="workspace id or stack name (ws-...)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_preflight)
    p = ssub.add_parser(
        "validate", help="check a hand-written Pulumi.<stack>.yaml without the Pulumi CLI"
    )
    p.add_argument("--config-file", required=True, help="the stack config file")
    p.add_argument(
        "--secret",
        action="append",
        metavar="KEY=FILE",
        help="a secret's clear value from a file (repeatable), checked instead of skipped, "
        'e.g. penguinmails:dkimPrivateKeys["a.com"]=dkim.pem',
    )
    p.set_defaults(handler=_validate)
