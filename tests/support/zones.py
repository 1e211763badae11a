"""Zone builders for the DNS tests: a correct domain from the record plan, which a test then
breaks in one place."""

import asyncio
import base64
import itertools
import random
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maildns import plan
from maildns.resolver import Resolver
from maildns.verify import Target
from tests.support.nsd import Nsd

T = TypeVar("T")

_ips = itertools.count(1)
_base = random.randrange(1, 250)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def resolver_for(nsd: Nsd, **options: Any) -> Resolver:
    options.setdefault("timeout", 1.0)
    return Resolver([nsd.address], **options)


def unique_zone(label: str = "t") -> str:
    """Zones are never removed from the shared server, so every test names its own."""
    return f"{label}-{uuid.uuid4().hex[:10]}.test"


def new_ip() -> str:
    """A fresh address per scenario so every reverse zone is its own (only ever DNS data)."""
    n = next(_ips)
    return f"10.{_base}.{n // 250}.{n % 250 + 1}"


def rsa_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@dataclass
class Domain:
    """A mail domain, its server and its zones. `lines[purpose]` are zone-file lines relative to
    the domain; `extra` holds further zones (origin -> lines)."""

    name: str
    ip: str
    hostname: str
    key: str
    records: list[plan.PlannedRecord]
    lines: dict[str, list[str]]
    reverse: list[str]
    extra: dict[str, str] = field(default_factory=dict)

    def publish(self, nsd: Nsd) -> None:
        body = "\n".join(line for lines in self.lines.values() for line in lines)
        ptr_zone = plan.absolute_name(self.record(plan.PTR).name, self.name)
        nsd.publish({self.name: body, ptr_zone: "\n".join(self.reverse), **self.extra})

    def record(self, purpose: str) -> plan.PlannedRecord:
        return next(r for r in self.records if r.purpose == purpose)

    def target(self, purpose: str) -> Target:
        r = self.record(purpose)
        return Target(r.purpose, r.type, r.name, r.value, self.name, self.ip, self.hostname)


def good_domain(key: str, *, label: str = "d") -> Domain:
    name = unique_zone(label)
    ip = new_ip()
    hostname = f"mail.{name}"
    records = plan.plan(
        domain=name, hostname=hostname, ip=ip, dkim_selector="pm1", dkim_public_key=key
    )
    lines: dict[str, list[str]] = {}
    reverse: list[str] = []
    for r in records:
        if r.purpose == plan.PTR:
            reverse.append(f"@ IN PTR {r.value}")
        else:
            lines.setdefault(r.purpose, []).append(
                f"{r.fqdn}. IN {r.type} {plan.zone_rdata(r.type, r.value)}"
            )
    return Domain(name, ip, hostname, key, records, lines, reverse)
