"""Helpers for program tests: realistic fleet configs and a recording mock of the Pulumi engine
(the one boundary we cannot run here)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from automation.sandbox.engine import run_program
from stacks.config import DomainSpec, FleetConfig, MailboxSpec, ServerSpec

ADMIN_PASSWORD = "admin-Pa55word-very-long"
MAILBOX_PASSWORD = "mailbox-Pa55word-xyz"
HETZNER_TOKEN = "hetzner-token-0123456789"
HOSTWINDS_KEY = "hostwinds-key-0123456789"


def _keys() -> tuple[str, str, str, str]:
    ssh = ed25519.Ed25519PrivateKey.generate()
    ssh_private = ssh.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    ssh_public = (
        ssh.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    dkim = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dkim_private = dkim.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    import base64

    der = dkim.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ssh_public, ssh_private, base64.b64encode(der).decode(), dkim_private


SSH_PUBLIC, SSH_PRIVATE, DKIM_PUBLIC, DKIM_PRIVATE = _keys()


def server(name: str = "mx1", provider: str = "hetzner", **kw: Any) -> ServerSpec:
    defaults: dict[str, Any] = {
        "size": "starter",
        "region": "eu-central" if provider != "hostwinds" else "us-west",
        "hostname": f"{name}.mail.example.net",
    }
    if provider == "existing":
        defaults.update(ip="198.51.100.7", ssh_user="admin", ssh_port=2222)
    defaults.update(kw)
    return ServerSpec(name=name, provider=provider, **defaults)


def domain(name: str = "example.com") -> DomainSpec:
    return DomainSpec(
        name=name, dkim_selector="pm1", dkim_public_key=DKIM_PUBLIC, dkim_private_key=DKIM_PRIVATE
    )


def mailbox(address: str, server_name: str = "mx1", **kw: Any) -> MailboxSpec:
    kw.setdefault("password", MAILBOX_PASSWORD)
    kw.setdefault("display_name", "Sales")
    return MailboxSpec(address=address, server=server_name, **kw)


def fleet_config(
    servers: tuple[ServerSpec, ...] = (),
    mailboxes: tuple[MailboxSpec, ...] = (),
    domains: tuple[DomainSpec, ...] | None = None,
    **kw: Any,
) -> FleetConfig:
    base = FleetConfig(
        workspace_id="11111111-2222-3333-4444-555555555555",
        tenant_id="99999999-8888-7777-6666-555555555555",
        servers=servers,
        domains=(domain(),) if domains is None else domains,
        mailboxes=mailboxes,
        stalwart_admin_password=ADMIN_PASSWORD,
        ssh_public_key=SSH_PUBLIC,
        ssh_private_key=SSH_PRIVATE,
        hetzner_token=HETZNER_TOKEN,
        hostwinds_api_key=HOSTWINDS_KEY,
    )
    return replace(base, **kw) if kw else base


def plain(value: Any) -> Any:
    if is_rpc_secret(value):
        return plain(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]  # as the engine receives them (secrets still wrapped)
    id: str

    def input(self, key: str) -> Any:
        return plain(self.inputs.get(key))

    def is_secret(self, key: str) -> bool:
        return is_rpc_secret(self.inputs.get(key))


@dataclass
class Recorder(Mocks):
    """Answers like a cloud would (numeric ids, documentation-range addresses) and records every
    resource's inputs."""

    resources: list[Registered] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self._lock:
            n = len(self.resources) + 1
            self.resources.append(Registered(args.typ, args.name, dict(args.inputs), str(1000 + n)))
        out = dict(args.inputs)
        if args.typ == "hcloud:index/server:Server":
            out.update(
                ipv4Address=f"192.0.2.{n}", ipv6Address=f"2001:db8:0:{n}::1", status="running"
            )
        if args.typ == "pulumi-python:dynamic/hostwinds:Instance":
            out.update(service_id=str(n), main_ip=f"203.0.113.{n}", ipv6="", status="running")
        return str(1000 + n), out

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Registered:
        return next(r for r in self.resources if r.name == name)


@dataclass
class Evaluated:
    recorder: Recorder
    outputs: dict[str, Any]


def evaluate(config: FleetConfig) -> Evaluated:
    recorder = Recorder()
    outputs = run_program("test-stack", config, recorder)
    return Evaluated(recorder, outputs)
