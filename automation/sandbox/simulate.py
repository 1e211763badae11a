"""Simulated providers: what a cloud would answer, decided from the stack's previous state.

`SimulatedCloud` is the `pulumi.runtime.Mocks` the program runs against. For each resource the
program registers it compares a keyed digest of every input with the previous run's and decides
what a real engine would do: create, update, replace (when an input the provider cannot change in
place differs) or nothing. Ids and addresses are kept across runs; a replaced or new machine gets
fresh ones. Digests are HMACs, so secrets are compared without being stored."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from automation.sandbox.state import StackState

SERVER = "hcloud:index/server:Server"
DNS_RECORD = "pulumi-python:dynamic/dns:Record"
HOSTWINDS = "pulumi-python:dynamic/hostwinds:Instance"
COMMAND = "command:remote:Command"
DYNAMIC_PROVIDER_KEY = "__provider"

# Inputs a provider cannot change in place (from pulumi-hcloud's and pulumi-command's schemas and
# the Hostwinds provider's own diff).
REPLACE_ON: dict[str, frozenset[str]] = {
    SERVER: frozenset({"image", "location", "datacenter", "sshKeys", "userData"}),
    "hcloud:index/sshKey:SshKey": frozenset({"publicKey"}),
    "hcloud:index/rdns:Rdns": frozenset({"serverId", "ipAddress", "primaryIpId", "floatingIpId"}),
    COMMAND: frozenset({"triggers"}),
    HOSTWINDS: frozenset({"location", "product", "image", "hostname", "ssh_key"}),
}

# Order in which a real run reports steps: what others depend on first.
RANK = {
    "pulumi:providers:hcloud": 0,
    "hcloud:index/sshKey:SshKey": 1,
    "hcloud:index/firewall:Firewall": 1,
    SERVER: 2,
    HOSTWINDS: 2,
    "hcloud:index/rdns:Rdns": 3,
    DNS_RECORD: 6,
}


def rank(type_: str, name: str) -> tuple[int, int, str]:
    # Commands: install before domains before accounts.
    if type_ == COMMAND:
        sub = 0 if name.endswith("-stalwart") else 1 if "-domain-" in name else 2
        return (4, sub, name)
    return (RANK.get(type_, 0 if type_.startswith("pulumi:providers:") else 5), 0, name)


@dataclass
class Step:
    op: str  # create | update | replace | same
    type: str
    name: str


class SandboxError(Exception):
    pass


class AddressPool:
    def __init__(self, ipv4_ranges: list[str], ipv6_range: str, taken: set[str]) -> None:
        self.v4 = [ipaddress.IPv4Network(r.strip()) for r in ipv4_ranges if r.strip()]
        self.v6 = ipaddress.IPv6Network(ipv6_range)
        self.taken = set(taken)

    def ipv4(self) -> str:
        for net in self.v4:
            for address in net.hosts():
                text = str(address)
                if text not in self.taken:
                    self.taken.add(text)
                    return text
        raise SandboxError(
            "the sandbox IPv4 ranges are exhausted for this stack; widen "
            "PENGUINMAILS_SANDBOX_IPV4_RANGES"
        )

    def ipv6(self) -> str:
        base = int(self.v6.network_address)
        room = 1 << max(0, 64 - self.v6.prefixlen)
        for index in range(1, room):
            text = str(ipaddress.IPv6Address(base + (index << 64) + 1))
            if text not in self.taken:
                self.taken.add(text)
                return text
        raise SandboxError(
            "the sandbox IPv6 range is exhausted; widen PENGUINMAILS_SANDBOX_IPV6_RANGE"
        )


def _plain(value: Any) -> Any:
    if is_rpc_secret(value):
        return _plain(unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class SimulatedCloud(Mocks):
    stack_name: str
    prior: StackState
    digest_key: bytes
    pool: AddressPool
    next_id: int
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    secret_inputs: dict[str, set[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # DNS records are the one resource the sandbox makes real: with `publish` (an `up`, never a
    # preview) their create writes into the connection's DNS service (`stacks.dns.apply`).
    publish: bool = False
    dns_timeout: float = 3.0

    def __post_init__(self) -> None:
        # The runtime calls new_resource from several executor threads at once.
        self._lock = threading.Lock()

    def digest(self, value: Any) -> str:
        text = json.dumps(_plain(value), sort_keys=True, default=str, separators=(",", ":"))
        return hmac.new(self.digest_key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def _new_id(self) -> str:
        value = self.next_id
        self.next_id += 1
        return str(value)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        try:
            with self._lock:
                return self._register(args)
        except Exception as exc:
            self.errors.append(f"{args.typ} {args.name}: {exc}")
            raise

    def _register(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        key = f"{args.typ}::{args.name}"
        if key in self.resources:
            raise SandboxError(f"duplicate resource {key}")
        inputs = {k: v for k, v in args.inputs.items() if k != DYNAMIC_PROVIDER_KEY}
        self.secret_inputs[key] = {k for k, v in inputs.items() if is_rpc_secret(v)}
        digests = {k: self.digest(v) for k, v in inputs.items()}
        prev = self.prior.resources.get(key)
        if prev is None:
            op = "create"
        else:
            old: dict[str, str] = prev.get("digests", {})
            changed = {k for k in set(old) | set(digests) if old.get(k) != digests.get(k)}
            if not changed:
                op = "same"
                if args.typ == DNS_RECORD and prev.get("outputs", {}).get("status") not in (
                    "published",
                    "manual",
                ):
                    op = "update"  # the last try did not publish it: try again
            elif changed & REPLACE_ON.get(args.typ, frozenset()):
                op = "replace"
            else:
                op = "update"
        if args.typ == DNS_RECORD:
            id_, outputs = self._dns_record(args, _plain(inputs), op, prev)
        elif op in ("create", "replace"):
            id_, outputs = self._provision(args, _plain(inputs))
        else:
            assert prev is not None
            id_, outputs = str(prev["id"]), dict(prev.get("outputs", {}))
        self.resources[key] = {
            "type": args.typ,
            "name": args.name,
            "id": id_,
            "digests": digests,
            "outputs": outputs,
        }
        self.steps.append(Step(op, args.typ, args.name))
        return id_, {**args.inputs, **outputs}

    def _dns_record(
        self, args: MockResourceArgs, inputs: dict[str, Any], op: str, prev: dict[str, Any] | None
    ) -> tuple[str, dict[str, Any]]:
        """Published for real on an `up`; a preview says what would happen. The stored outputs
        are the inputs without the credentials, plus the outcome (what `remove` needs)."""
        from stacks import dns

        plain = {k: v for k, v in inputs.items() if k != "credentials"}
        plain = {k: v for k, v in plain.items() if k not in dns.OUTCOME_KEYS}
        id_ = f"{inputs.get('fqdn')}/{inputs.get('type')}/{inputs.get('purpose')}"
        if op == "same" and prev is not None:
            return str(prev["id"]), dict(prev.get("outputs", {}))
        if not self.publish:
            before = dict(prev.get("outputs", {})) if prev else {}
            waiting = {k: before.get(k) for k in dns.OUTCOME_KEYS}
            waiting.update({"status": "pending", "detail": "would be published by the next up"})
            return id_, {**plain, **waiting}
        previous = dict(prev.get("outputs", {})) if prev and op == "update" else None
        return id_, {**plain, **dns.apply(inputs, timeout=self.dns_timeout, previous=previous)}

    def _provision(
        self, args: MockResourceArgs, inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """A fresh resource as the provider would report it (no secrets in here: it is stored)."""
        if args.typ.startswith("pulumi:providers:"):
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack_name}/{args.name}")), {}
        id_ = self._new_id()
        if args.typ == SERVER:
            ipv6 = self.pool.ipv6()
            return id_, {
                "ipv4Address": self.pool.ipv4(),
                "ipv6Address": ipv6,
                "ipv6Network": str(ipaddress.IPv6Network(f"{ipv6}/64", strict=False)),
                "status": "running",
            }
        if args.typ == HOSTWINDS:
            return id_, {
                "service_id": id_,
                "main_ip": self.pool.ipv4(),
                "ipv6": self.pool.ipv6(),
                "status": "running",
            }
        if args.typ == "hcloud:index/rdns:Rdns":
            return f"s-{int(inputs.get('serverId', 0))}-{inputs.get('ipAddress', '')}", {}
        if args.typ == "hcloud:index/sshKey:SshKey":
            fp = hashlib.md5(str(inputs.get("publicKey", "")).encode(), usedforsecurity=False)
            return id_, {
                "fingerprint": ":".join(fp.hexdigest()[i : i + 2] for i in range(0, 32, 2))
            }
        if args.typ == COMMAND:
            return f"{args.name}-{id_}", {"stdout": "ok", "stderr": ""}
        return id_, {}
