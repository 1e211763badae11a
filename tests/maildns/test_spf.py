"""RFC 7208 check_host(): syntax, macros, every mechanism and the limits, against a real nsd."""

import ipaddress

import pytest

from maildns.resolver import Resolver
from maildns.spf import SpfOutcome, SpfResult, check_host
from maildns.spf_syntax import MacroContext, SpfSyntaxError, expand, expand_domain, parse
from tests.support.nsd import Nsd, silent_nameserver
from tests.support.zones import resolver_for, run, unique_zone

# RFC 7208 7.4's examples, verbatim.
RFC_CTX = MacroContext(
    sender="strong-bad@email.example.com",
    domain="email.example.com",
    ip=ipaddress.ip_address("192.0.2.3"),
    helo="mx.example.org",
)
RFC_EXAMPLES = [
    ("%{s}", "strong-bad@email.example.com"),
    ("%{o}", "email.example.com"),
    ("%{d}", "email.example.com"),
    ("%{d4}", "email.example.com"),
    ("%{d3}", "email.example.com"),
    ("%{d2}", "example.com"),
    ("%{d1}", "com"),
    ("%{dr}", "com.example.email"),
    ("%{d2r}", "example.email"),
    ("%{l}", "strong-bad"),
    ("%{l-}", "strong.bad"),
    ("%{lr}", "strong-bad"),
    ("%{lr-}", "bad.strong"),
    ("%{l1r-}", "strong"),
    ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
    ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
    ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
    ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
    ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
    ("%%%_%-", "% %20"),
]


@pytest.mark.parametrize(("macro", "expected"), RFC_EXAMPLES)
def test_rfc_7208_macro_examples(macro: str, expected: str) -> None:
    assert expand(macro, RFC_CTX) == expected


def test_ipv6_macro_and_url_escaping() -> None:
    ctx = MacroContext(
        sender="a b@example.com",
        domain="email.example.com",
        ip=ipaddress.ip_address("2001:db8::cb01"),
        helo="h",
    )
    assert expand("%{ir}.%{v}._spf.%{d2}", ctx) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"
    )
    assert expand("%{L}", ctx) == "a%20b"
    # The nibbles keep the case the address was written in (openspf suite, v-macro-ip6).
    upper = MacroContext(ctx.sender, ctx.domain, ctx.ip, "h", ip_text="2001:DB8::CB01")
    assert expand("%{i}", upper).startswith("2.0.0.1.0.D.B.8.0.0.0.0")
    assert expand("%{i}", ctx).startswith("2.0.0.1.0.d.b.8.0.0.0.0")
    assert expand("%{c} %{r}", ctx, explain=True) == "2001:db8::cb01 unknown"
    long = expand_domain("%{l}." + "x" * 60 + "." + "y" * 60 + "." + "z" * 60 + ".%{d}", ctx)
    assert len(long) <= 253 and long.endswith("email.example.com")


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 foo -all",
        "v=spf1 ip4:300.1.1.1 -all",
        "v=spf1 ip4:192.0.2.0/33 -all",
        "v=spf1 ip6:192.0.2.1 -all",
        "v=spf1 include -all",
        "v=spf1 a:example.com/024",
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 exists:%{x}.example.com",
        "v=spf1 exists:%{c}.example.com",
        "v=spf1 a:%.example.com",
        "v=spf1 -all/24",
        "v=spf1 mx:example.123",
    ],
)
def test_syntax_errors_are_caught_before_evaluation(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse(record)


def test_valid_syntax() -> None:
    record = parse(
        "v=spf1 +a -mx/24//64 ~ptr:example.com ?ip4:192.0.2.0/24 ip6:2001:db8::/32 "
        "include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} "
        "redirect=_spf.example.com exp=explain.%{d} unknown-mod=%{s}"
    )
    assert [t.name for t in record.directives] == [
        "a", "mx", "ptr", "ip4", "ip6", "include", "exists"
    ]  # fmt: skip
    assert record.directives[1].cidr4 == 24 and record.directives[1].cidr6 == 64
    assert record.redirect == "_spf.example.com" and record.exp == "explain.%{d}"


@pytest.fixture(scope="module")
def zone(nsd: Nsd) -> str:
    """One zone holding every case below, published once."""
    z = unique_zone("spf")
    lines = [
        # pass/fail/softfail/neutral by qualifier
        'q-pass IN TXT "v=spf1 +ip4:192.0.2.0/24 -all"',
        'q-fail IN TXT "v=spf1 ip4:198.51.100.1 -all"',
        'q-soft IN TXT "v=spf1 ip4:198.51.100.1 ~all"',
        'q-neutral IN TXT "v=spf1 ip4:198.51.100.1 ?all"',
        'q-default IN TXT "v=spf1 ip4:198.51.100.1"',
        # exists with macros: the IP, reversed, under the domain
        'exists IN TXT "v=spf1 exists:%{ir}.%{v}._spf.%{d} -all"',
        "3.2.0.192.in-addr._spf.exists IN A 127.0.0.2",
        # ptr: 192.0.2.3's PTR names host.ptr.<zone>, which resolves back
        'ptr IN TXT "v=spf1 ptr -all"',
        "host.ptr IN A 192.0.2.3",
        f'ptr-other IN TXT "v=spf1 ptr:elsewhere.{z} -all"',
        # %{p}: the validated name, as exists target
        'pmacro IN TXT "v=spf1 exists:%{p}.allowed.%{d} -all"',
        f"host.ptr.{z}.allowed.pmacro IN A 127.0.0.2",
        # exp
        'exp IN TXT "v=spf1 -all exp=why.%{d}"',
        'why.exp IN TXT "%{i} is not one of %{d}\'s designated mail servers."',
        # void lookups: two are allowed, the third is permerror
        'void2 IN TXT "v=spf1 a:nx1.%{d} a:nx2.%{d} ip4:192.0.2.3 -all"',
        'void3 IN TXT "v=spf1 a:nx1.%{d} a:nx2.%{d} a:nx3.%{d} ip4:192.0.2.3 -all"',
        # lookup limit: exactly 10 terms is fine
        'ten IN TXT "v=spf1 ' + " ".join(["a"] * 9) + ' include:q-pass.%{d2} -all"',
        "ten IN A 198.51.100.9",
        # include semantics
        f'inc-none IN TXT "v=spf1 include:nothing.{z} -all"',
        f'inc-fail IN TXT "v=spf1 include:q-fail.{z} ip4:192.0.2.3 -all"',
        f'redir IN TXT "v=spf1 redirect=q-pass.{z}"',
        f'redir-none IN TXT "v=spf1 redirect=nothing.{z}"',
        "nothing IN A 192.0.2.200",
        # mx with cidr, a with dual cidr, ip6
        'mx IN TXT "v=spf1 mx/30 -all"',
        "mx IN MX 5 MAIL.mx",
        "mail.mx IN A 192.0.2.1",
        'a6 IN TXT "v=spf1 a//64 -all"',
        "a6 IN AAAA 2001:db8:1:2::1",
        'ip6 IN TXT "v=spf1 ip6:2001:db8::/32 -all"',
        'two IN TXT "v=spf1 -all"',
        'two IN TXT "v=spf1 +all"',
        'notspf IN TXT "v=spf10 +all"',
        'syntax IN TXT "v=spf1 ip4:192.0.2.300 -all"',
        'temp IN TXT "v=spf1 include:elsewhere.invalid -all"',
    ]
    nsd.publish({z: "\n".join(lines), "2.0.192.in-addr.arpa": f"3 IN PTR host.ptr.{z}."})
    return z


def spf(nsd: Nsd, ip: str, domain: str, sender: str = "") -> SpfOutcome:
    async def go() -> SpfOutcome:
        async with resolver_for(nsd) as resolver:
            return await check_host(resolver, ip, domain, sender)

    return run(go())


@pytest.mark.parametrize(
    ("ip", "name", "result"),
    [
        ("192.0.2.3", "q-pass", SpfResult.PASS),
        ("192.0.2.3", "q-fail", SpfResult.FAIL),
        ("192.0.2.3", "q-soft", SpfResult.SOFTFAIL),
        ("192.0.2.3", "q-neutral", SpfResult.NEUTRAL),
        ("192.0.2.3", "q-default", SpfResult.NEUTRAL),
        ("192.0.2.3", "exists", SpfResult.PASS),
        ("192.0.2.4", "exists", SpfResult.FAIL),
        ("192.0.2.3", "ptr", SpfResult.PASS),
        ("192.0.2.4", "ptr", SpfResult.FAIL),
        ("192.0.2.3", "ptr-other", SpfResult.FAIL),
        ("192.0.2.3", "pmacro", SpfResult.PASS),
        ("192.0.2.3", "void2", SpfResult.PASS),
        ("192.0.2.3", "void3", SpfResult.PERMERROR),
        ("192.0.2.3", "ten", SpfResult.PASS),
        ("192.0.2.3", "inc-none", SpfResult.PERMERROR),
        ("192.0.2.3", "inc-fail", SpfResult.PASS),
        ("192.0.2.3", "redir", SpfResult.PASS),
        ("198.51.100.1", "redir", SpfResult.FAIL),
        ("192.0.2.3", "redir-none", SpfResult.PERMERROR),
        ("192.0.2.2", "mx", SpfResult.PASS),
        ("192.0.2.5", "mx", SpfResult.FAIL),
        ("2001:db8:1:2::ffff", "a6", SpfResult.PASS),
        ("2001:db8:1:3::1", "a6", SpfResult.FAIL),
        ("2001:db8:ffff::1", "ip6", SpfResult.PASS),
        ("192.0.2.3", "ip6", SpfResult.FAIL),
        ("::ffff:192.0.2.3", "q-pass", SpfResult.PASS),
        ("192.0.2.3", "two", SpfResult.PERMERROR),
        ("192.0.2.3", "notspf", SpfResult.NONE),
        ("192.0.2.3", "absent", SpfResult.NONE),
        ("192.0.2.3", "syntax", SpfResult.PERMERROR),
        ("192.0.2.3", "temp", SpfResult.TEMPERROR),
    ],
)
def test_check_host(nsd: Nsd, zone: str, ip: str, name: str, result: SpfResult) -> None:
    outcome = spf(nsd, ip, f"{name}.{zone}", sender=f"strong-bad@{name}.{zone}")
    assert outcome.result is result, outcome.reason


def test_exp_explains_a_fail_with_macros(nsd: Nsd, zone: str) -> None:
    outcome = spf(nsd, "192.0.2.3", f"exp.{zone}")
    assert outcome.result is SpfResult.FAIL
    assert outcome.explanation == f"192.0.2.3 is not one of exp.{zone}'s designated mail servers."


def test_limits_are_reported(nsd: Nsd, zone: str) -> None:
    void = spf(nsd, "192.0.2.3", f"void3.{zone}")
    assert void.void_lookups == 3 and "void lookups" in void.reason
    ten = spf(nsd, "192.0.2.3", f"ten.{zone}")
    assert ten.lookups == 10


@pytest.mark.parametrize("domain", ["localhost", "[192.0.2.3]", "192.0.2.3", "a..example.com"])
def test_invalid_domain_is_none(nsd: Nsd, domain: str) -> None:
    assert spf(nsd, "192.0.2.3", domain).result is SpfResult.NONE


def test_unanswered_lookups_are_temperror() -> None:
    async def go() -> SpfOutcome:
        with silent_nameserver() as address:
            async with Resolver([address], timeout=0.2, attempts=1) as resolver:
                return await check_host(resolver, "192.0.2.3", "example.com")

    outcome = run(go())
    assert outcome.result is SpfResult.TEMPERROR and "timeout" in outcome.reason
