"""Each record checked against a real nsd, the way a receiving mail server judges it."""

import pytest

from maildns import plan
from maildns.checks import RecordCheck, RecordStatus
from maildns.resolver import Resolver
from maildns.verify import Checker, Target, check_domain, check_target
from tests.support.nsd import Nsd, silent_nameserver
from tests.support.zones import (
    Domain,
    good_domain,
    resolver_for,
    rsa_public_key,
    run,
    unique_zone,
)


@pytest.fixture(scope="module")
def key() -> str:
    return rsa_public_key()


def check(nsd: Nsd, domain: Domain, purpose: str) -> RecordCheck:
    async def go() -> RecordCheck:
        async with resolver_for(nsd) as resolver:
            return await check_target(resolver, domain.target(purpose))

    return run(go())


def published(nsd: Nsd, key: str, **lines: list[str]) -> Domain:
    domain = good_domain(key)
    domain.lines.update(lines)
    domain.publish(nsd)
    return domain


def test_all_correct_records_verify(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key)
    targets = [domain.target(r.purpose) for r in domain.records]

    async def go() -> list[RecordCheck]:
        async with resolver_for(nsd) as resolver:
            return await Checker(resolver).check_all(targets)

    results = run(go())
    assert {t.purpose: r.status for t, r in zip(targets, results, strict=True)} == {
        t.purpose: RecordStatus.VERIFIED for t in targets
    }, [r.detail for r in results]
    assert set(domain.lines) >= {plan.MX, plan.A, plan.SPF, plan.DKIM, plan.DMARC}


@pytest.mark.parametrize(
    ("spf", "extra"),
    [
        ('"v=spf1 include:_spf.{d} -all"', '_spf IN TXT "v=spf1 ip4:{net}/24 -all"'),
        ('"v=spf1 ip4:{net}/16 -all"', ""),
        ('"v=spf1 mx -all"', ""),
        ('"v=spf1 a:mail.{d} ~all"', ""),
        ('"v=spf1 redirect=_spf.{d}"', '_spf IN TXT "v=spf1 mx:{d} ?all"'),
    ],
    ids=["include", "cidr", "mx", "a", "redirect"],
)
def test_spf_authorising_the_ip_another_way_is_verified(
    nsd: Nsd, key: str, spf: str, extra: str
) -> None:
    domain = good_domain(key)
    net = domain.ip.rsplit(".", 1)[0] + ".0"
    fmt = {"d": domain.name, "net": net}
    domain.lines[plan.SPF] = [f"@ IN TXT {spf.format(**fmt)}", extra.format(**fmt)]
    domain.publish(nsd)
    result = check(nsd, domain, plan.SPF)
    assert result.status is RecordStatus.VERIFIED, result.detail
    assert domain.ip in result.detail


def test_two_spf_records_are_invalid(nsd: Nsd, key: str) -> None:
    domain = published(
        nsd, key, spf=['@ IN TXT "v=spf1 mx -all"', '@ IN TXT "v=spf1 ip4:192.0.2.1 -all"']
    )
    result = check(nsd, domain, plan.SPF)
    assert result.status is RecordStatus.INVALID
    assert "2 v=spf1 records" in result.detail


def test_spf_over_the_lookup_limit_is_invalid(nsd: Nsd, key: str) -> None:
    chain = " ".join(f"a:h{i}.{{d}}" for i in range(11))
    domain = good_domain(key)
    hosts = [f"h{i} IN A 192.0.2.{i + 1}" for i in range(11)]
    # Over 255 characters: the record is two strings joined by the verifier.
    record = f"v=spf1 {chain.format(d=domain.name)} ip4:{domain.ip} -all"
    domain.lines[plan.SPF] = [f"@ IN TXT {plan.txt_value(record)}", *hosts]
    domain.publish(nsd)
    result = check(nsd, domain, plan.SPF)
    assert result.status is RecordStatus.INVALID
    assert "more than 10 DNS-querying terms" in result.detail


def test_spf_not_covering_the_ip_is_a_mismatch(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key, spf=['@ IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"'])
    result = check(nsd, domain, plan.SPF)
    assert result.status is RecordStatus.MISMATCH
    assert "softfail" in result.detail and f"ip4:{domain.ip}" in result.detail


def test_dkim_split_over_several_strings_is_verified(nsd: Nsd, key: str) -> None:
    value = f"v=DKIM1; k=rsa; p={key}"
    strings = " ".join(f'"{value[i : i + 100]}"' for i in range(0, len(value), 100))
    domain = published(nsd, key, dkim=[f"pm1._domainkey IN TXT {strings}"])
    assert strings.count('"') >= 8
    result = check(nsd, domain, plan.DKIM)
    assert result.status is RecordStatus.VERIFIED, result.detail


def test_dkim_with_another_key_is_a_mismatch(nsd: Nsd, key: str) -> None:
    other = rsa_public_key()
    theirs = plan.txt_value(plan.dkim_value(other, "rsa"))
    domain = published(nsd, key, dkim=[f"pm1._domainkey IN TXT {theirs}"])
    result = check(nsd, domain, plan.DKIM)
    assert result.status is RecordStatus.MISMATCH
    assert "not ours" in result.detail


def test_dkim_of_another_key_type_is_a_mismatch(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key, dkim=[f'pm1._domainkey IN TXT "v=DKIM1; k=ed25519; p={key[:44]}"'])
    result = check(nsd, domain, plan.DKIM)
    assert result.status is RecordStatus.MISMATCH and "k=ed25519" in result.detail


def test_two_dmarc_records_are_invalid(nsd: Nsd, key: str) -> None:
    domain = published(
        nsd,
        key,
        dmarc=['_dmarc IN TXT "v=DMARC1; p=none"', '_dmarc IN TXT "v=DMARC1; p=reject"'],
    )
    result = check(nsd, domain, plan.DMARC)
    assert result.status is RecordStatus.INVALID and "2 v=DMARC1 records" in result.detail


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ('"v=DMARC1; rua=mailto:d@example.com"', "p= (the policy) is required"),
        ('"v=DMARC1; p=block"', "p=block"),
        ('"v=DMARC1; p=none; rua=mailto:not-an-address"', "not a valid mailto"),
        ('"p=none; v=DMARC1"', "MISSING"),
    ],
)
def test_invalid_dmarc_says_why(nsd: Nsd, key: str, record: str, problem: str) -> None:
    domain = published(nsd, key, dmarc=[f"_dmarc IN TXT {record}"])
    result = check(nsd, domain, plan.DMARC)
    if problem == "MISSING":
        assert result.status is RecordStatus.MISSING
    else:
        assert result.status is RecordStatus.INVALID and problem in result.detail


def test_dmarc_reached_through_a_cname_is_verified(nsd: Nsd, key: str) -> None:
    provider = unique_zone("dmarc-provider")
    domain = good_domain(key)
    domain.lines[plan.DMARC] = [f"_dmarc IN CNAME policy.{provider}."]
    # The CNAME target lives in another zone, so the resolver must ask for it itself.
    domain.extra[provider] = 'policy IN TXT "v=DMARC1; p=quarantine; rua=mailto:r@example.com"'
    domain.publish(nsd)
    result = check(nsd, domain, plan.DMARC)
    assert result.status is RecordStatus.VERIFIED, result.detail
    assert "p=quarantine" in result.detail and provider in result.detail


def test_mx_in_upper_case_with_a_trailing_dot_is_verified(nsd: Nsd, key: str) -> None:
    domain = good_domain(key)
    domain.lines[plan.MX] = [f"@ IN MX 10 {domain.hostname.upper()}."]
    domain.publish(nsd)
    assert check(nsd, domain, plan.MX).status is RecordStatus.VERIFIED


def test_mx_to_a_host_with_another_address_is_a_mismatch(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key, mx=["@ IN MX 10 other", "other IN A 192.0.2.99"])
    result = check(nsd, domain, plan.MX)
    assert result.status is RecordStatus.MISMATCH
    assert "192.0.2.99" in result.detail and domain.ip in result.detail


def test_missing_records_are_missing(nsd: Nsd, key: str) -> None:
    domain = good_domain(key)
    for purpose in (plan.MX, plan.SPF, plan.DKIM, plan.DMARC, plan.A, plan.MTA_STS):
        domain.lines.pop(purpose)
    domain.reverse = []
    domain.publish(nsd)
    for purpose in (plan.MX, plan.SPF, plan.DKIM, plan.DMARC, plan.A, plan.PTR, plan.MTA_STS):
        result = check(nsd, domain, purpose)
        assert result.status is RecordStatus.MISSING, (purpose, result.detail)
        assert result.detail


def test_ptr_must_name_the_host_and_resolve_back(nsd: Nsd, key: str) -> None:
    domain = good_domain(key)
    domain.reverse = [f"@ IN PTR static.{domain.name}."]
    domain.publish(nsd)
    result = check(nsd, domain, plan.PTR)
    assert result.status is RecordStatus.MISMATCH and f"static.{domain.name}" in result.detail

    domain.reverse = [f"@ IN PTR {domain.hostname}."]
    domain.lines[plan.A] = ["mail IN A 192.0.2.77"]
    domain.publish(nsd)
    result = check(nsd, domain, plan.PTR)
    assert result.status is RecordStatus.MISMATCH and "not forward-confirmed" in result.detail


def test_a_nameserver_that_does_not_answer_is_an_error_not_missing(key: str) -> None:
    domain = good_domain(key)

    async def go() -> list[RecordCheck]:
        with silent_nameserver() as address:
            async with Resolver([address], timeout=0.2, attempts=2) as resolver:
                return await Checker(resolver).check_all(
                    [domain.target(r.purpose) for r in domain.records]
                )

    for result in run(go()):
        assert result.status is RecordStatus.ERROR, result.detail
        assert "timeout" in result.detail


def test_a_refusing_server_is_an_error(nsd: Nsd, key: str) -> None:
    # nsd refuses names outside its zones, as a broken delegation would.
    domain = good_domain(key)
    assert check(nsd, domain, plan.DMARC).status is RecordStatus.ERROR


def test_whole_domain_check(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key)

    async def go() -> list[tuple[str, RecordStatus]]:
        async with resolver_for(nsd) as resolver:
            report = await check_domain(
                resolver, domain.name, domain.ip, dkim_selector="pm1", dkim_public_key=key
            )
            assert report.ok and report.hostname == domain.hostname
            return [(label, c.status) for label, _, _, c in report.results]

    statuses = dict(run(go()))
    assert statuses == dict.fromkeys(
        ["MX", "SPF", "DMARC", "PTR", "DKIM", "MTA-STS", "TLS-RPT"], RecordStatus.VERIFIED
    )


def test_shared_lookups_ask_each_question_once(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key)
    target = domain.target(plan.SPF)
    copies = [
        Target(t.purpose, t.type, t.name, t.value, t.domain, t.ip, t.hostname) for t in [target] * 5
    ]

    async def go() -> tuple[int, list[RecordCheck]]:
        async with resolver_for(nsd) as resolver:
            results = await Checker(resolver).check_all(copies)
            return resolver.stats.queries, results

    queries, results = run(go())
    assert all(r.verified for r in results)
    assert queries == 1  # one TXT lookup: ip4 needs no more


def test_external_dmarc_reports_need_the_destinations_authorisation(nsd: Nsd, key: str) -> None:
    reports = unique_zone("reports")
    domain = good_domain(key)
    domain.lines[plan.DMARC] = [f'_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:agg@{reports}"']
    domain.extra[reports] = '@ IN TXT "v=spf1 -all"'
    domain.publish(nsd)
    unauthorised = check(nsd, domain, plan.DMARC)
    assert unauthorised.status is RecordStatus.VERIFIED  # the policy itself is valid
    assert f"reports to {reports} will not be sent" in unauthorised.detail

    domain.extra[reports] = f'{domain.name}._report._dmarc IN TXT "v=DMARC1"'
    domain.publish(nsd)
    authorised = check(nsd, domain, plan.DMARC)
    assert (
        authorised.status is RecordStatus.VERIFIED and "will not be sent" not in authorised.detail
    )


def test_report_address_in_the_domain_itself_needs_no_authorisation(nsd: Nsd, key: str) -> None:
    domain = published(nsd, key)
    result = check(nsd, domain, plan.DMARC)
    assert result.status is RecordStatus.VERIFIED and "reports" not in result.detail
