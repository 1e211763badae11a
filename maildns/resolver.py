"""An asyncio stub resolver built for sweeps of many domains.

One UDP socket per nameserver multiplexes every query in flight (dnspython's async resolver opens
a socket per query, which caps it near 2,000 queries/s). Concurrency is bounded by a semaphore,
each try by a timeout, and a query is tried `attempts` times across the nameservers. Answers are
kept for the life of the `Resolver`, and a lookup already in flight is shared, so one sweep asks
each question once however many inboxes depend on it.

Outcomes follow RFC 7208 / RFC 2308 vocabulary: an answer, NXDOMAIN, NODATA (the name exists
without that type) or an error (timeout, SERVFAIL, REFUSED, ...). CNAMEs are followed.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import dns.exception
import dns.rcode
import dns.rdatatype
import dns.resolver

from kit.errors import ConfigurationError
from kit.hostports import split_host_port
from maildns import wire
from maildns.transport import Channel, ask_tcp, encode_question, open_channel
from maildns.wire import Rdata, Reply, WireError
from settings.dns import DnsSettings

MAX_CNAME_DEPTH = 8


class Outcome(StrEnum):
    OK = "ok"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    ERROR = "error"


@dataclass(frozen=True)
class Answer:
    name: str
    rdtype: str
    outcome: Outcome
    rdatas: tuple[Rdata, ...] = ()
    error: str | None = None
    canonical: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def void(self) -> bool:
        """No data (NXDOMAIN or NODATA): what RFC 7208 calls a void lookup."""
        return self.outcome in (Outcome.NXDOMAIN, Outcome.NODATA)

    def describe(self) -> str:
        if self.outcome is Outcome.OK:
            return f"{len(self.rdatas)} {self.rdtype} record(s)"
        if self.outcome is Outcome.NXDOMAIN:
            return f"{self.name} does not exist (NXDOMAIN)"
        if self.outcome is Outcome.NODATA:
            return f"{self.name} has no {self.rdtype} record"
        return f"lookup of {self.name} {self.rdtype} failed: {self.error}"

    def texts(self) -> list[str]:
        """TXT records, each one's strings joined as RFC 7208 3.3 and RFC 6376 3.6.2.2 say."""
        return [
            b"".join(rd.strings).decode("utf-8", "replace")
            for rd in self.rdatas
            if rd.rdtype == wire.TXT
        ]

    def addresses(self) -> list[str]:
        return [rd.address for rd in self.rdatas if rd.rdtype in (wire.A, wire.AAAA)]

    def targets(self) -> list[str]:
        """PTR/CNAME targets, MX exchanges and SRV targets, lowercased without the root dot."""
        return [normalize(rd.target) for rd in self.rdatas if rd.rdtype in _NAMED]


_QTYPES: dict[str, int] = {}  # "TXT" -> 16, filled as types are asked for
_NAMED = (wire.PTR, wire.CNAME, wire.MX, wire.SRV, wire.NS)


def rcode_text(rcode: int) -> str:
    """`SERVFAIL`, `REFUSED`, ...; `RCODE23` for a value dnspython does not name."""
    try:
        return dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    except (ValueError, dns.exception.DNSException):
        return f"RCODE{rcode}"


def normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


def parse_nameservers(spec: str | None) -> list[tuple[str, int]]:
    """`host[:port]` items separated by commas or spaces; IPv6 as `[addr]:port` or bare."""
    if not spec or not spec.strip():
        system = dns.resolver.Resolver(configure=True)
        return [(str(ns), 53) for ns in system.nameservers]
    servers = []
    for item in spec.replace(",", " ").split():
        try:
            host, port = split_host_port(item, 53)
        except ValueError as exc:
            raise ConfigurationError(f"DNS nameserver {exc}") from exc
        try:
            ipaddress.ip_address(host)
        except ValueError:
            try:
                host = str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])
            except OSError as exc:
                raise ConfigurationError(f"DNS nameserver {item!r} cannot be resolved") from exc
        servers.append((str(host), port))
    return servers


@dataclass
class Stats:
    queries: int = 0
    timeouts: int = 0
    cache_hits: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class Resolver:
    """Use one per sweep or command: answers are cached for its lifetime."""

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]],
        *,
        timeout: float = 2.0,
        attempts: int = 2,
        concurrency: int = 256,
        cache: bool = True,
    ) -> None:
        if not nameservers:
            raise ConfigurationError("no DNS nameservers configured")
        self.nameservers = list(nameservers)
        self.timeout = timeout
        self.attempts = attempts
        self.concurrency = concurrency
        self.use_cache = cache
        self.stats = Stats()
        self._cache: dict[tuple[str, str], asyncio.Future[Answer]] = {}
        self._channels: dict[tuple[str, int], Channel] = {}
        self._semaphore: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, s: DnsSettings, **overrides: object) -> "Resolver":
        options: dict[str, object] = {
            "timeout": s.dns_timeout_seconds,
            "attempts": s.dns_attempts,
            "concurrency": s.dns_concurrency,
        }
        options.update(overrides)
        return cls(parse_nameservers(s.dns_nameservers), **options)  # type: ignore[arg-type]

    async def query(self, name: str, rdtype: str) -> Answer:
        key = (normalize(name), rdtype.upper())
        if self.use_cache:
            cached = self._cache.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                if cached.done():  # most hits: no shield (a future and a callback) needed
                    return cached.result()
                return await asyncio.shield(cached)
            future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            self._cache[key] = future
            try:
                answer = await self._resolve(key[0], key[1], 0)
            except BaseException as exc:
                del self._cache[key]
                future.set_exception(exc)
                future.exception()  # mark retrieved: the waiters get it through shield
                raise
            future.set_result(answer)
            return answer
        return await self._resolve(key[0], key[1], 0)

    async def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self._semaphore = None

    async def __aenter__(self) -> "Resolver":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _resolve(self, name: str, rdtype: str, depth: int) -> Answer:
        qtype = _QTYPES.get(rdtype)
        if qtype is None:
            try:
                qtype = _QTYPES.setdefault(rdtype, int(dns.rdatatype.RdataType.make(rdtype)))
            except (dns.exception.DNSException, ValueError):
                return Answer(name, rdtype, Outcome.ERROR, error=f"unknown record type {rdtype}")
        question = encode_question(name, qtype)
        if question is None:
            return Answer(name, rdtype, Outcome.NXDOMAIN, error="not a valid domain name")
        reply, error = await self._exchange(question)
        if reply is None:
            self._count(Outcome.ERROR)
            return Answer(name, rdtype, Outcome.ERROR, error=error, canonical=name)
        # The transport matched the reply's question to ours byte for byte (case aside).
        answer = self._interpret(name, rdtype, name + "." if name else ".", qtype, reply)
        if isinstance(answer, Answer):
            self._count(answer.outcome)
            return answer
        # The chain left the data this server gave us: ask for the target itself.
        if depth >= MAX_CNAME_DEPTH:
            return Answer(name, rdtype, Outcome.ERROR, error="CNAME chain too long or looping")
        followed = await self._resolve(normalize(answer), rdtype, depth + 1)
        return Answer(
            name, rdtype, followed.outcome, followed.rdatas, followed.error, followed.canonical
        )

    def _count(self, outcome: Outcome) -> None:
        self.stats.by_outcome[outcome.value] = self.stats.by_outcome.get(outcome.value, 0) + 1

    @staticmethod
    def _interpret(name: str, rdtype: str, qname: str, qtype: int, reply: Reply) -> Answer | str:
        """The answer for `qname`, following CNAMEs inside the reply; or the name the chain
        leads to outside the data this server gave (to be asked for itself)."""
        current = qname
        for _ in range(MAX_CNAME_DEPTH + 1):
            here = [r for r in reply.answer if r.owner == current and r.rdclass == wire.IN]
            found = tuple(r.rdata for r in here if r.rdtype == qtype)
            if found:
                return Answer(name, rdtype, Outcome.OK, found, None, normalize(current))
            if qtype == wire.CNAME:
                break
            cname = next((r for r in here if r.rdtype == wire.CNAME), None)
            if cname is None:
                break
            current = cname.rdata.target.lower()
        else:
            return Answer(name, rdtype, Outcome.ERROR, error="CNAME chain too long or looping")
        canonical = normalize(current)
        if reply.rcode == dns.rcode.NXDOMAIN:
            return Answer(name, rdtype, Outcome.NXDOMAIN, canonical=canonical)
        if reply.rcode != dns.rcode.NOERROR:
            return Answer(name, rdtype, Outcome.ERROR, error=rcode_text(reply.rcode))
        if current != qname and not reply.authority_soa:
            return current
        return Answer(name, rdtype, Outcome.NODATA, canonical=canonical)

    async def _exchange(self, question: bytes) -> tuple[Reply | None, str]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        error = "timeout"
        async with self._semaphore:
            for attempt in range(self.attempts):
                server = self.nameservers[attempt % len(self.nameservers)]
                try:
                    reply = await self._udp(server, question)
                except TimeoutError:
                    self.stats.timeouts += 1
                    error = f"timeout after {self.timeout:g}s from {server[0]}:{server[1]}"
                    continue
                except OSError as exc:
                    error = f"{server[0]}:{server[1]}: {exc.strerror or exc}"
                    continue
                if reply.truncated:
                    try:
                        reply = await self._tcp(server, question)
                    except (TimeoutError, OSError, EOFError, WireError) as exc:
                        error = f"TCP retry of a truncated answer failed: {exc or type(exc)}"
                        continue
                if reply.rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                    error = f"{rcode_text(reply.rcode)} from {server[0]}:{server[1]}"
                    if attempt + 1 < self.attempts and len(self.nameservers) > 1:
                        continue
                    return None, error
                return reply, ""
        return None, error

    async def _channel(self, server: tuple[str, int]) -> Channel:
        channel = self._channels.get(server)
        if channel is None:
            created = await open_channel(server)
            channel = self._channels.setdefault(server, created)
            if channel is not created:
                created.close()
        return channel

    async def _udp(self, server: tuple[str, int], question: bytes) -> Reply:
        channel = await self._channel(server)
        self.stats.queries += 1
        return await channel.ask(question, self.timeout)

    async def _tcp(self, server: tuple[str, int], question: bytes) -> Reply:
        self.stats.queries += 1
        return await ask_tcp(server, question, self.timeout)
