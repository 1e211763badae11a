"""RFC 7208 `check_host()`: the SPF result a receiving mail server would compute for an IP.

    result = await check_host(resolver, "192.0.2.10", "example.com", sender="a@example.com")

Every term the RFC defines is evaluated (all, include, a, mx, ptr, ip4, ip6, exists, redirect,
exp, macros with transformers), with the limits of 4.6.4: at most 10 DNS-querying terms, at most
2 void lookups, at most 10 MX or PTR names per term. The result carries a human-readable reason
(which term matched, in which record) for the DNS manager's `detail`.
"""

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from maildns.resolver import Answer, Outcome, Resolver, normalize
from maildns.spf_syntax import (
    LOOKUP_TERMS,
    MacroContext,
    Record,
    SpfSyntaxError,
    Term,
    expand,
    expand_domain,
    is_spf,
    parse,
    uses_p,
)

MAX_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_NAMES = 10  # MX exchanges or PTR names examined per term

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class SpfResult(StrEnum):
    PASS = "pass"  # noqa: S105 - an SPF result word, not a password
    FAIL = "fail"
    SOFTFAIL = "softfail"
    NEUTRAL = "neutral"
    NONE = "none"
    PERMERROR = "permerror"
    TEMPERROR = "temperror"


@dataclass
class SpfOutcome:
    result: SpfResult
    reason: str
    domain: str
    record: str | None = None
    explanation: str | None = None
    lookups: int = 0
    void_lookups: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "result": self.result.value,
            "reason": self.reason,
            "domain": self.domain,
            "record": self.record,
            "explanation": self.explanation,
            "lookups": self.lookups,
            "void_lookups": self.void_lookups,
        }


class _Stop(Exception):
    """Ends the evaluation with permerror or temperror from any depth."""

    def __init__(self, result: SpfResult, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


@dataclass
class _State:
    resolver: Resolver
    ip: IPAddress
    ctx: MacroContext
    lookups: int = 0
    void: int = 0
    trail: list[str] = field(default_factory=list)


def _valid_domain(domain: str) -> bool:
    """RFC 7208 4.3: a malformed <domain> (a label over 63 octets, an empty label, one label)
    is "none" without a lookup. 2.3: an address literal ("[192.0.2.1]", RFC 5321 4.1.3) or a
    bare IP address is no domain at all, whichever identity it came as."""
    labels = domain.split(".")
    return (
        0 < len(domain) <= 253
        and len(labels) > 1
        and all(0 < len(label) <= 63 for label in labels)
        and domain.isascii()
        and not (domain.startswith("[") or domain.endswith("]"))
        and not labels[-1].isdigit()
    )


def _parse_ip(ip: str) -> IPAddress:
    address = ipaddress.ip_address(ip.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


async def check_host(
    resolver: Resolver,
    ip: str,
    domain: str,
    sender: str = "",
    helo: str = "",
    *,
    receiver: str = "unknown",
) -> SpfOutcome:
    """`domain` is the domain checked (normally the sender's); `sender` defaults to
    postmaster@domain as RFC 7208 2.4 does for an empty MAIL FROM."""
    address = _parse_ip(ip)
    domain = normalize(domain)
    if not sender:
        sender = f"postmaster@{domain}"
    elif "@" not in sender:
        sender = f"postmaster@{sender}"
    elif sender.startswith("@"):
        sender = "postmaster" + sender
    ctx = MacroContext(
        sender=sender,
        domain=domain,
        ip=address,
        helo=helo or domain,
        receiver=receiver,
        ip_text=ip.strip(),
    )
    state = _State(resolver, address, ctx)
    try:
        outcome = await _check(state, domain)
    except _Stop as stop:
        outcome = SpfOutcome(stop.result, stop.reason, domain)
    outcome.lookups, outcome.void_lookups = state.lookups, state.void
    return outcome


async def _fetch_record(state: _State, domain: str) -> tuple[str | None, SpfOutcome | None]:
    if not _valid_domain(domain):
        return None, SpfOutcome(SpfResult.NONE, f"{domain!r} is not a valid domain name", domain)
    answer = await state.resolver.query(domain, "TXT")
    if answer.outcome is Outcome.ERROR:
        return None, SpfOutcome(SpfResult.TEMPERROR, answer.describe(), domain)
    records = [t for t in answer.texts() if is_spf(t)]
    if not records:
        return None, SpfOutcome(SpfResult.NONE, f"no v=spf1 record at {domain}", domain)
    if len(records) > 1:
        return None, SpfOutcome(
            SpfResult.PERMERROR,
            f"{len(records)} v=spf1 records at {domain}; RFC 7208 allows exactly one",
            domain,
        )
    return records[0], None


async def _check(state: _State, domain: str) -> SpfOutcome:
    text, early = await _fetch_record(state, domain)
    if early is not None:
        return early
    assert text is not None
    try:
        record = parse(text)
    except SpfSyntaxError as exc:
        return SpfOutcome(SpfResult.PERMERROR, f"syntax error at {domain}: {exc}", domain, text)
    previous = state.ctx.domain
    state.ctx.domain = domain
    try:
        return await _evaluate(state, domain, text, record)
    finally:
        state.ctx.domain = previous


def _where(domain: str, term: Term, inner: str | None = None) -> str:
    where = f"'{term.text}' in the record at {domain}"
    return f"{inner.removeprefix('matched ')}, reached through {where}" if inner else where


async def _evaluate(state: _State, domain: str, text: str, record: Record) -> SpfOutcome:
    for term in record.directives:
        matched, via = await _matches(state, domain, term)
        if matched:
            result = SpfResult(term.qualifier)
            outcome = SpfOutcome(result, f"matched {_where(domain, term, via)}", domain, text)
            if result is SpfResult.FAIL and record.exp:
                outcome.explanation = await _explain(state, record.exp)
            return outcome
    if record.redirect is not None:
        _count(state, f"redirect={record.redirect}")
        target = await _expand_domain(state, record.redirect)
        inner = await _check(state, target)
        if inner.result is SpfResult.NONE:
            raise _Stop(SpfResult.PERMERROR, f"redirect={target} from {domain}: {inner.reason}")
        inner.reason = f"{inner.reason} (after redirect from {domain})"
        return inner
    return SpfOutcome(SpfResult.NEUTRAL, f"no term matched in the record at {domain}", domain, text)


def _count(state: _State, term: str) -> None:
    state.lookups += 1
    if state.lookups > MAX_LOOKUPS:
        raise _Stop(
            SpfResult.PERMERROR,
            f"more than {MAX_LOOKUPS} DNS-querying terms (limit reached at '{term}')",
        )


def _void(state: _State, answer: Answer, term: Term) -> None:
    if answer.void:
        state.void += 1
        if state.void > MAX_VOID_LOOKUPS:
            raise _Stop(
                SpfResult.PERMERROR,
                f"more than {MAX_VOID_LOOKUPS} void lookups (the last at '{term.text}')",
            )


def _temperror(answer: Answer) -> None:
    if answer.outcome is Outcome.ERROR:
        raise _Stop(SpfResult.TEMPERROR, answer.describe())


async def _expand_domain(state: _State, spec: str) -> str:
    if uses_p(spec) and state.ctx.validated_name is None:
        state.ctx.validated_name = await _validated_name(state, state.ctx.domain)
    try:
        return expand_domain(spec, state.ctx)
    except SpfSyntaxError as exc:
        raise _Stop(SpfResult.PERMERROR, str(exc)) from exc


def _in_network(state: _State, address: str, cidr4: int | None, cidr6: int | None) -> bool:
    try:
        candidate = ipaddress.ip_address(address)
    except ValueError:
        return False
    if candidate.version != state.ip.version:
        return False
    # RFC 7208 5.6: an omitted length is /32 or /128; /0 is a length (any address matches).
    bits = cidr4 if candidate.version == 4 else cidr6
    if bits is None:
        bits = candidate.max_prefixlen
    return state.ip in ipaddress.ip_network(f"{candidate}/{bits}", strict=False)


def _address_type(state: _State) -> str:
    return "A" if state.ip.version == 4 else "AAAA"


async def _matches(state: _State, domain: str, term: Term) -> tuple[bool, str | None]:
    """Whether `term` matches, and the reason an include matched. RFC 7208 5: all, ip4 and ip6
    ask no DNS; every other mechanism counts against the 10-lookup limit (4.6.4) and works on
    its domain-spec expanded (7), or on the current domain when it has none."""
    if term.name == "all":
        return True, None
    if term.name in ("ip4", "ip6"):
        assert term.arg is not None
        return _in_network(state, term.arg, term.cidr4, term.cidr6), None
    assert term.name in LOOKUP_TERMS
    _count(state, term.text)
    target = await _expand_domain(state, term.arg) if term.arg else domain
    return await _LOOKUPS[term.name](state, target, term)


async def _include(state: _State, target: str, term: Term) -> tuple[bool, str | None]:
    """RFC 7208 5.2: the included check's pass matches; its temperror is ours, and its
    permerror or none is our permerror."""
    inner = await _check(state, target)
    if inner.result is SpfResult.TEMPERROR:
        raise _Stop(SpfResult.TEMPERROR, inner.reason)
    if inner.result in (SpfResult.PERMERROR, SpfResult.NONE):
        raise _Stop(SpfResult.PERMERROR, f"include:{target}: {inner.reason}")
    return inner.result is SpfResult.PASS, inner.reason


async def _exists(state: _State, target: str, term: Term) -> tuple[bool, str | None]:
    """RFC 7208 5.7: any A record matches, whatever the IP's family."""
    answer = await state.resolver.query(target, "A")
    _temperror(answer)
    _void(state, answer, term)
    return answer.ok, None


async def _a(state: _State, target: str, term: Term) -> tuple[bool, str | None]:
    """RFC 7208 5.3: an address of the IP's family within the CIDR length."""
    answer = await state.resolver.query(target, _address_type(state))
    _temperror(answer)
    _void(state, answer, term)
    return any(_in_network(state, a, term.cidr4, term.cidr6) for a in answer.addresses()), None


async def _mx_term(state: _State, target: str, term: Term) -> tuple[bool, str | None]:
    return await _mx(state, target, term), None


async def _ptr(state: _State, target: str, term: Term) -> tuple[bool, str | None]:
    """RFC 7208 5.5: a validated name matches when it is the target or ends in "." + target;
    domain names compare without regard to case (RFC 4343)."""
    target = normalize(target)
    validated = await _validated_names(state)
    return any(n == target or n.endswith("." + target) for n in validated), None


_LOOKUPS = {"include": _include, "exists": _exists, "a": _a, "mx": _mx_term, "ptr": _ptr}


async def _mx(state: _State, target: str, term: Term) -> bool:
    answer = await state.resolver.query(target, "MX")
    _temperror(answer)
    _void(state, answer, term)
    exchanges = sorted(answer.rdatas, key=lambda rd: rd.preference)
    if len(exchanges) > MAX_NAMES:
        raise _Stop(SpfResult.PERMERROR, f"'{term.text}': {target} has more than 10 MX records")
    for rd in exchanges:
        host = normalize(rd.target)
        if not host:  # null MX (RFC 7505)
            continue
        addresses = await state.resolver.query(host, _address_type(state))
        _temperror(addresses)
        if any(_in_network(state, a, term.cidr4, term.cidr6) for a in addresses.addresses()):
            return True
    return False


async def _validated_names(state: _State) -> list[str]:
    """RFC 7208 5.5: PTR names of the IP whose own addresses include the IP. DNS errors here
    make the mechanism not match rather than temperror."""
    answer = await state.resolver.query(state.ip.reverse_pointer, "PTR")
    if answer.void:
        state.void += 1
        if state.void > MAX_VOID_LOOKUPS:
            raise _Stop(SpfResult.PERMERROR, f"more than {MAX_VOID_LOOKUPS} void lookups (ptr)")
    validated = []
    for name in answer.targets()[:MAX_NAMES]:
        forward = await state.resolver.query(name, _address_type(state))
        if any(_in_network(state, a, None, None) for a in forward.addresses()):
            validated.append(name)
    return validated


async def _validated_name(state: _State, domain: str) -> str:
    domain = normalize(domain)
    names = await _validated_names(state)
    for preferred in (domain, *[n for n in names if n.endswith("." + domain)]):
        if preferred in names:
            return preferred
    return names[0] if names else "unknown"


async def _explain(state: _State, spec: str) -> str | None:
    """exp=: a failure's explanation. Any problem simply means no explanation (RFC 7208 6.2)."""
    try:
        target = await _expand_domain(state, spec)
    except _Stop:
        return None
    answer = await state.resolver.query(target, "TXT")
    texts = answer.texts()
    if len(texts) != 1:
        return None
    try:
        if uses_p(texts[0]) and state.ctx.validated_name is None:
            state.ctx.validated_name = await _validated_name(state, state.ctx.domain)
        return expand(texts[0], state.ctx, explain=True)
    except SpfSyntaxError:
        return None
