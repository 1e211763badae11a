"""The resolver against nsd: outcomes, CNAMEs, truncation, sharing, nameserver settings."""

import asyncio

import pytest

from kit.errors import ConfigurationError
from maildns.resolver import Answer, Outcome, Resolver, parse_nameservers
from tests.support.nsd import Nsd
from tests.support.zones import resolver_for, run, unique_zone


@pytest.fixture(scope="module")
def zone(nsd: Nsd) -> str:
    z = unique_zone("res")
    big = " ".join(f'"{chr(97 + i) * 250}"' for i in range(8))  # 2,000 bytes: needs TCP
    nsd.publish(
        {
            z: "\n".join(
                [
                    "host IN A 192.0.2.1",
                    "alias IN CNAME host",
                    "alias2 IN CNAME alias",
                    "dangling IN CNAME nowhere",
                    "loop1 IN CNAME loop2",
                    "loop2 IN CNAME loop1",
                    f"big IN TXT {big}",
                    'Mixed IN TXT "case"',
                ]
            )
        }
    )
    return z


def ask(nsd: Nsd, name: str, rtype: str) -> Answer:
    async def go() -> Answer:
        async with resolver_for(nsd) as r:
            return await r.query(name, rtype)

    return run(go())


def test_outcomes(nsd: Nsd, zone: str) -> None:
    ok = ask(nsd, f"host.{zone}", "A")
    assert ok.outcome is Outcome.OK and ok.addresses() == ["192.0.2.1"]
    assert ask(nsd, f"host.{zone}", "MX").outcome is Outcome.NODATA
    assert ask(nsd, f"absent.{zone}", "A").outcome is Outcome.NXDOMAIN
    assert ask(nsd, f"MIXED.{zone}.", "TXT").texts() == ["case"]
    refused = ask(nsd, "not-served.example", "A")
    assert refused.outcome is Outcome.ERROR and "REFUSED" in (refused.error or "")
    assert ask(nsd, "bad..name", "A").outcome is Outcome.NXDOMAIN


def test_cnames_are_followed(nsd: Nsd, zone: str) -> None:
    chained = ask(nsd, f"alias2.{zone}", "A")
    assert chained.addresses() == ["192.0.2.1"] and chained.canonical == f"host.{zone}"
    assert ask(nsd, f"dangling.{zone}", "A").outcome is Outcome.NXDOMAIN
    assert ask(nsd, f"loop1.{zone}", "A").outcome is Outcome.ERROR
    assert ask(nsd, f"alias.{zone}", "CNAME").targets() == [f"host.{zone}"]


def test_truncated_answers_are_fetched_over_tcp(nsd: Nsd, zone: str) -> None:
    answer = ask(nsd, f"big.{zone}", "TXT")
    assert answer.ok and len(answer.texts()[0]) == 2000


def test_concurrent_identical_lookups_share_one_query(nsd: Nsd, zone: str) -> None:
    async def go() -> tuple[int, list[Answer]]:
        async with resolver_for(nsd) as r:
            answers = await asyncio.gather(*(r.query(f"host.{zone}", "A") for _ in range(50)))
            return r.stats.queries, list(answers)

    queries, answers = run(go())
    assert queries == 1 and all(a.addresses() == ["192.0.2.1"] for a in answers)


def test_without_cache_every_lookup_is_a_query(nsd: Nsd, zone: str) -> None:
    async def go() -> int:
        async with resolver_for(nsd, cache=False, concurrency=8) as r:
            await asyncio.gather(*(r.query(f"host.{zone}", "A") for _ in range(40)))
            return r.stats.queries

    assert run(go()) == 40


def test_a_second_nameserver_answers_when_the_first_is_silent(nsd: Nsd, zone: str) -> None:
    from tests.support.nsd import silent_nameserver

    async def go() -> Answer:
        with silent_nameserver() as dead:
            async with Resolver([dead, nsd.address], timeout=0.2, attempts=2) as r:
                return await r.query(f"host.{zone}", "A")

    assert run(go()).addresses() == ["192.0.2.1"]


def test_nameserver_settings() -> None:
    assert parse_nameservers("127.0.0.1:5353, [::1]:53 ::1 10.0.0.1") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 53),
        ("10.0.0.1", 53),
    ]
    assert parse_nameservers("localhost:5300")[0][1] == 5300
    with pytest.raises(ConfigurationError):
        parse_nameservers("127.0.0.1:70000")
    with pytest.raises(ConfigurationError):
        parse_nameservers("no-such-host.invalid")
