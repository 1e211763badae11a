"""Blocklist lookups done the way the lists require (../shared/reference/sending.md, 4.3).

- IP lists take `<reversed address>.<zone>`: IPv4 octets reversed, IPv6 in nibble form (32
  reversed hex digits). Domain lists (Spamhaus DBL, SURBL, URIBL...) take `<domain>.<zone>`.
- With a Spamhaus DQS key, Spamhaus zones are asked through the Data Query Service instead:
  `<reversed>.<key>.zen.dq.spamhaus.net`, `<domain>.<key>.dbl.dq.spamhaus.net` (Spamhaus refuses
  public resolvers and big cloud networks on the public mirrors).
- A listing is an A record in 127.0.0.0/8 outside 127.255.255.0/24. `127.255.255.0/24` is
  Spamhaus's error range (.252 typo in the zone, .254 public/open resolver, .255 excessive
  queries); that, DNS REFUSED, SERVFAIL, a timeout, or an answer outside 127/8 is `unknown`:
  never a listing, never clean.
- A list is trusted only while it passes its RFC 5782 test entries: an IP list must list
  127.0.0.2 and must not list 127.0.0.1; a domain list must list `test` and not `invalid`. A
  list that fails is reported and its answers are `unknown`.
No database here: the query budget shared across workers is `domain.health.blocklists`."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from probes.types import Check, CheckResult, Nameserver, Status

ERROR_RANGE = ipaddress.ip_network("127.255.255.0/24")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
REFUSED_CODES = {"127.255.255.252", "127.255.255.254", "127.255.255.255"}
IP, DOMAIN = "ip", "domain"
LISTED, NOT_LISTED, UNKNOWN = "listed", "not_listed", "unknown"
# RFC 5782 section 5: (must be listed, must not be listed)
TEST_ENTRIES = {IP: ("127.0.0.2", "127.0.0.1"), DOMAIN: ("test", "invalid")}
DQS_ZONES = {"zen.spamhaus.org": "zen.dq.spamhaus.net", "dbl.spamhaus.org": "dbl.dq.spamhaus.net"}


@dataclass(frozen=True)
class Blocklist:
    zone: str
    kind: str = IP  # ip | domain


@dataclass(frozen=True)
class ZoneAnswer:
    zone: str
    state: str  # listed | not_listed | unknown
    codes: tuple[str, ...] = ()
    detail: str = ""
    subject: str = ""


@dataclass(frozen=True)
class ListHealth:
    zone: str
    healthy: bool | None  # None: could not tell (its test entries answered unknown)
    detail: str = ""


def lists(ip_zones: Iterable[str], domain_zones: Iterable[str] = ()) -> tuple[Blocklist, ...]:
    return tuple(Blocklist(z.strip(".").lower(), IP) for z in ip_zones) + tuple(
        Blocklist(z.strip(".").lower(), DOMAIN) for z in domain_zones
    )


def make_resolver(
    nameservers: tuple[Nameserver, ...], timeout: float
) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(n.host, n.port) for n in nameservers]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def reverse(address: str) -> str:
    """`192.0.2.10` -> `10.2.0.192`; IPv6 -> its 32 nibbles reversed, dot-separated."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return ".".join(reversed(str(ip).split(".")))
    return ".".join(reversed(ip.exploded.replace(":", "")))


def zone_for(bl: Blocklist, dqs_key: str | None) -> str:
    if dqs_key and bl.zone in DQS_ZONES:
        return f"{dqs_key}.{DQS_ZONES[bl.zone]}"
    return bl.zone


def query_name(subject: str, bl: Blocklist | str, dqs_key: str | None = None) -> str:
    """The name to look up for `subject` (an address on an IP list, a domain on a domain list)."""
    bl = bl if isinstance(bl, Blocklist) else Blocklist(bl)
    label = reverse(subject) if bl.kind == IP else subject.strip(".").lower()
    return f"{label}.{zone_for(bl, dqs_key)}."


def classify(zone: str, codes: tuple[str, ...], subject: str = "") -> ZoneAnswer:
    addresses = []
    for c in codes:
        try:
            addresses.append(ipaddress.ip_address(c))
        except ValueError:
            return ZoneAnswer(zone, UNKNOWN, codes, f"answer {c!r} is not an address", subject)
    if any(a in ERROR_RANGE for a in addresses):
        return ZoneAnswer(zone, UNKNOWN, codes, "lookup refused or rate-limited", subject)
    if addresses and all(a in LOOPBACK for a in addresses):
        return ZoneAnswer(zone, LISTED, codes, "", subject)
    return ZoneAnswer(zone, UNKNOWN, codes, "answer outside 127.0.0.0/8", subject)


async def lookup(
    resolver: dns.asyncresolver.Resolver,
    subject: str,
    bl: Blocklist | str,
    dqs_key: str | None = None,
) -> ZoneAnswer:
    bl = bl if isinstance(bl, Blocklist) else Blocklist(bl)
    try:
        answer = await resolver.resolve(query_name(subject, bl, dqs_key), "A", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ZoneAnswer(bl.zone, NOT_LISTED, subject=subject)
    except dns.resolver.LifetimeTimeout:
        return ZoneAnswer(bl.zone, UNKNOWN, detail="timed out", subject=subject)
    except dns.resolver.NoNameservers as exc:
        # REFUSED (a DQS key without the service, a resolver that will not answer) or SERVFAIL
        return ZoneAnswer(bl.zone, UNKNOWN, detail=_rcode_detail(exc), subject=subject)
    except dns.exception.DNSException as exc:
        return ZoneAnswer(bl.zone, UNKNOWN, detail=str(exc)[:200], subject=subject)
    return classify(bl.zone, tuple(sorted(r.to_text() for r in answer)), subject)


def _rcode_detail(exc: dns.resolver.NoNameservers) -> str:
    text = str(exc)
    for rcode in ("REFUSED", "SERVFAIL", "NOTIMP", "FORMERR"):
        if rcode in text:
            return f"the resolver answered {rcode}"
    return text[:200]


def health_of(bl: Blocklist, listed: ZoneAnswer, clean: ZoneAnswer) -> ListHealth:
    """RFC 5782: the must-list entry listed and the must-not-list one not listed."""
    must, must_not = TEST_ENTRIES[bl.kind]
    if listed.state == UNKNOWN or clean.state == UNKNOWN:
        return ListHealth(bl.zone, None, "its test entries could not be looked up")
    if listed.state != LISTED:
        return ListHealth(bl.zone, False, f"does not list its test entry {must}")
    if clean.state != NOT_LISTED:
        return ListHealth(bl.zone, False, f"lists {must_not}, which no working list lists")
    return ListHealth(bl.zone, True)


async def check_health(
    resolver: dns.asyncresolver.Resolver, bl: Blocklist, dqs_key: str | None = None
) -> ListHealth:
    must, must_not = TEST_ENTRIES[bl.kind]
    listed, clean = await asyncio.gather(
        lookup(resolver, must, bl, dqs_key), lookup(resolver, must_not, bl, dqs_key)
    )
    return health_of(bl, listed, clean)


def trusted(answer: ZoneAnswer, health: Mapping[str, ListHealth]) -> ZoneAnswer:
    """An answer of a list that failed (or could not run) its test entries is `unknown`."""
    h = health.get(answer.zone)
    if h is None or h.healthy is True or answer.state == UNKNOWN:
        return answer
    why = "failed its RFC 5782 test entries" if h.healthy is False else "list health unknown"
    return ZoneAnswer(answer.zone, UNKNOWN, answer.codes, f"{why}: {h.detail}", answer.subject)


def evaluate(
    address: str,
    answers: list[ZoneAnswer],
    health: Mapping[str, ListHealth] | None = None,
) -> CheckResult:
    health = health or {}
    answers = [trusted(a, health) for a in answers]
    data = {
        "address": address,
        "zones": [
            {
                "zone": a.zone,
                "subject": a.subject or address,
                "state": a.state,
                "codes": list(a.codes),
                "detail": a.detail,
            }
            for a in answers
        ],
        "lists": [
            {"zone": h.zone, "healthy": h.healthy, "detail": h.detail} for h in health.values()
        ],
    }
    listed = [a for a in answers if a.state == LISTED]
    unknown = [a for a in answers if a.state == UNKNOWN]
    if listed:
        where = ", ".join(
            f"{a.zone} ({'/'.join(a.codes)}{', ' + a.subject if a.subject else ''})" for a in listed
        )
        return CheckResult(Check.DNSBL, Status.CRITICAL, f"listed on {where}", len(listed), data)
    if unknown:
        where = ", ".join(f"{a.zone}: {a.detail}" for a in unknown)
        return CheckResult(Check.DNSBL, Status.UNKNOWN, f"lookup failed ({where})", None, data)
    zones = ", ".join(dict.fromkeys(a.zone for a in answers)) or "no zones configured"
    return CheckResult(Check.DNSBL, Status.OK, f"not listed ({zones})", 0, data)


def is_ipv4(address: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False


def is_ip(address: str | None) -> bool:
    try:
        ipaddress.ip_address(address or "")
        return True
    except ValueError:
        return False
