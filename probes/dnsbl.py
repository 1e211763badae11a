"""Blocklist lookups of a server's IPv4 address. A listing is an A record in 127.0.0.0/8; Spamhaus
answers 127.255.255.252/254/255 when it refuses the query (public resolver, rate limit, typo in
the zone), which is not a listing and must not be reported as one."""

import ipaddress
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from probes.types import Check, CheckResult, Nameserver, Status

REFUSED_CODES = {"127.255.255.252", "127.255.255.254", "127.255.255.255"}


@dataclass(frozen=True)
class ZoneAnswer:
    zone: str
    state: str  # listed | not_listed | refused | error
    codes: tuple[str, ...] = ()
    detail: str = ""


def make_resolver(
    nameservers: tuple[Nameserver, ...], timeout: float
) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(n.host, n.port) for n in nameservers]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def query_name(address: str, zone: str) -> str:
    reversed_octets = ".".join(reversed(address.split(".")))
    return f"{reversed_octets}.{zone.strip('.')}."


async def lookup(resolver: dns.asyncresolver.Resolver, address: str, zone: str) -> ZoneAnswer:
    try:
        answer = await resolver.resolve(query_name(address, zone), "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ZoneAnswer(zone, "not_listed")
    except dns.resolver.LifetimeTimeout:
        return ZoneAnswer(zone, "error", detail="timed out")
    except (dns.resolver.NoNameservers, dns.exception.DNSException) as exc:
        return ZoneAnswer(zone, "error", detail=str(exc)[:200])
    codes = tuple(sorted(r.to_text() for r in answer))
    if all(c in REFUSED_CODES for c in codes):
        return ZoneAnswer(zone, "refused", codes, "lookup refused or rate-limited")
    listed = tuple(c for c in codes if c.startswith("127.") and c not in REFUSED_CODES)
    if listed:
        return ZoneAnswer(zone, "listed", listed)
    return ZoneAnswer(zone, "error", codes, "answer outside 127.0.0.0/8")


def evaluate(address: str, answers: list[ZoneAnswer]) -> CheckResult:
    data = {
        "address": address,
        "zones": [
            {"zone": a.zone, "state": a.state, "codes": list(a.codes), "detail": a.detail}
            for a in answers
        ],
    }
    listed = [a for a in answers if a.state == "listed"]
    refused = [a for a in answers if a.state == "refused"]
    errors = [a for a in answers if a.state == "error"]
    if listed:
        where = ", ".join(f"{a.zone} ({'/'.join(a.codes)})" for a in listed)
        return CheckResult(Check.DNSBL, Status.CRITICAL, f"listed on {where}", len(listed), data)
    if refused:
        where = ", ".join(a.zone for a in refused)
        return CheckResult(
            Check.DNSBL, Status.WARNING, f"lookup refused or rate-limited by {where}", 0, data
        )
    if errors:
        where = ", ".join(f"{a.zone}: {a.detail}" for a in errors)
        return CheckResult(Check.DNSBL, Status.UNKNOWN, f"lookup failed ({where})", None, data)
    zones = ", ".join(a.zone for a in answers) or "no zones configured"
    return CheckResult(Check.DNSBL, Status.OK, f"not listed ({zones})", 0, data)


def is_ipv4(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False
