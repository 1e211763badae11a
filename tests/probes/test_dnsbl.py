"""Blocklist lookups against a real nsd serving blocklist zones on loopback: listed, not listed,
Spamhaus's refusal codes, a broken list (fails its RFC 5782 test entry), IPv6 in nibble form, a
domain listing, the DQS query name, REFUSED and a timeout; one lookup per list and subject per
run however many servers share it."""

import asyncio
import socket

import pytest

from probes import dnsbl
from probes.dnsbl import Blocklist
from probes.runner import probe_many
from probes.types import Check, Nameserver, ProbeConfig, Status, Target
from tests.support.nsd import Nsd
from tests.support.zones import unique_zone

KEY = "abcdefghijklmnopqrstuvwxyz"  # a DQS key is 26 characters
V6 = "2001:db8::25"
V6_NAME = "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
HEALTHY = "2.0.0.127 IN A 127.0.0.2\n"


@pytest.fixture(scope="module")
def lists(nsd: Nsd) -> dict[str, str]:
    zen, broken, dbl, refusing = (unique_zone(n) for n in ("zen", "broken", "dbl", "refuse"))
    nsd.publish(
        {
            zen: HEALTHY
            + "10.2.0.192 IN A 127.0.0.2\n10.2.0.192 IN A 127.0.0.4\n"
            + f"{V6_NAME} IN A 127.0.0.3\n",
            broken: "10.2.0.192 IN A 127.0.0.2\n",  # no 127.0.0.2 test entry: not trusted
            refusing: HEALTHY
            + "10.2.0.192 IN A 127.255.255.254\n11.2.0.192 IN A 127.255.255.252\n",
            dbl: "test IN A 127.0.1.2\nspammy.example IN A 127.0.1.2\n",
            f"{KEY}.zen.dq.spamhaus.net": HEALTHY + "10.2.0.192 IN A 127.0.0.2\n",
        }
    )
    return {"zen": zen, "broken": broken, "dbl": dbl, "refusing": refusing}


def _resolver(nsd: Nsd, timeout: float = 1.0):  # type: ignore[no-untyped-def]
    return dnsbl.make_resolver((Nameserver(nsd.host, nsd.port),), timeout)


def _lookup(nsd: Nsd, subject: str, bl: Blocklist, key: str | None = None) -> dnsbl.ZoneAnswer:
    return asyncio.run(dnsbl.lookup(_resolver(nsd), subject, bl, key))


def test_query_names_ipv4_ipv6_domain_and_dqs() -> None:
    assert dnsbl.query_name("192.0.2.10", Blocklist("zen.spamhaus.org")) == (
        "10.2.0.192.zen.spamhaus.org."
    )
    assert dnsbl.query_name(V6, Blocklist("zen.spamhaus.org")) == f"{V6_NAME}.zen.spamhaus.org."
    assert dnsbl.query_name("192.0.2.10", Blocklist("zen.spamhaus.org"), KEY) == (
        f"10.2.0.192.{KEY}.zen.dq.spamhaus.net."
    )
    dbl = Blocklist("dbl.spamhaus.org", dnsbl.DOMAIN)
    assert dnsbl.query_name("Acme.Example", dbl) == "acme.example.dbl.spamhaus.org."
    assert dnsbl.query_name("acme.example", dbl, KEY) == f"acme.example.{KEY}.dbl.dq.spamhaus.net."
    # a list that is not Spamhaus's is asked directly even with a key
    assert dnsbl.query_name("192.0.2.10", Blocklist("bl.spamcop.net"), KEY) == (
        "10.2.0.192.bl.spamcop.net."
    )


@pytest.mark.parametrize(
    ("codes", "state"),
    [
        (("127.0.0.2",), "listed"),
        (("127.0.1.2",), "listed"),
        (("127.255.255.252",), "unknown"),
        (("127.255.255.254",), "unknown"),
        (("127.255.255.255",), "unknown"),
        (("127.0.0.2", "127.255.255.254"), "unknown"),
        (("10.0.0.1",), "unknown"),
    ],
)
def test_answers_are_classified(codes: tuple[str, ...], state: str) -> None:
    assert dnsbl.classify("zen.test", codes).state == state


def test_listed_and_not_listed_ipv4_and_ipv6(nsd: Nsd, lists: dict[str, str]) -> None:
    zen = Blocklist(lists["zen"])
    listed = _lookup(nsd, "192.0.2.10", zen)
    assert (listed.state, listed.codes) == ("listed", ("127.0.0.2", "127.0.0.4"))
    assert _lookup(nsd, "192.0.2.99", zen).state == "not_listed"
    assert _lookup(nsd, V6, zen).state == "listed"
    assert _lookup(nsd, "2001:db8::26", zen).state == "not_listed"


def test_refusal_codes_refused_and_timeouts_are_unknown(nsd: Nsd, lists: dict[str, str]) -> None:
    refusing = Blocklist(lists["refusing"])
    for address in ("192.0.2.10", "192.0.2.11"):
        answer = _lookup(nsd, address, refusing)
        assert answer.state == "unknown" and "refused or rate-limited" in answer.detail
    # nsd answers REFUSED outside its zones: a DQS key without the service
    refused = _lookup(nsd, "192.0.2.10", Blocklist("zen.spamhaus.org"), "z" * 26)
    assert refused.state == "unknown" and "REFUSED" in refused.detail
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = dnsbl.make_resolver((Nameserver("127.0.0.1", silent.getsockname()[1]),), 0.5)
        answer = asyncio.run(dnsbl.lookup(resolver, "192.0.2.10", Blocklist(lists["zen"])))
    assert (answer.state, answer.detail) == ("unknown", "timed out")


def test_dqs_form_is_queried_when_a_key_is_set(nsd: Nsd, lists: dict[str, str]) -> None:
    answer = _lookup(nsd, "192.0.2.10", Blocklist("zen.spamhaus.org"), KEY)
    assert answer.state == "listed"


def test_a_domain_listing(nsd: Nsd, lists: dict[str, str]) -> None:
    dbl = Blocklist(lists["dbl"], dnsbl.DOMAIN)
    assert _lookup(nsd, "spammy.example", dbl).state == "listed"
    assert _lookup(nsd, "clean.example", dbl).state == "not_listed"
    health = asyncio.run(dnsbl.check_health(_resolver(nsd), dbl))
    assert health.healthy is True


def test_list_health_follows_rfc_5782(nsd: Nsd, lists: dict[str, str]) -> None:
    r = _resolver(nsd)
    assert asyncio.run(dnsbl.check_health(r, Blocklist(lists["zen"]))).healthy is True
    broken = asyncio.run(dnsbl.check_health(r, Blocklist(lists["broken"])))
    assert broken.healthy is False and "127.0.0.2" in broken.detail


def _config(nsd: Nsd, *zones: str) -> ProbeConfig:
    return ProbeConfig(
        timeout=1.0,
        dnsbl_zones=zones,
        dnsbl_nameservers=(Nameserver(nsd.host, nsd.port),),
        checks=frozenset({Check.DNSBL}),
    )


def _probe(config: ProbeConfig, *targets: Target) -> dict[str, object]:
    results = asyncio.run(probe_many(list(targets), config))
    return {key: checks[0] for key, checks in results.items()}


def test_the_check_reports_a_listing_of_either_address_and_distrusts_a_broken_list(
    nsd: Nsd, lists: dict[str, str]
) -> None:
    listed = Target(key="a", address="192.0.2.99", hostname="mx.example.net", ipv6=V6)
    clean = Target(key="b", address="192.0.2.98", hostname="mx2.example.net")
    out = _probe(_config(nsd, lists["zen"]), listed, clean)
    assert out["a"].status is Status.CRITICAL and V6 in out["a"].detail  # type: ignore[attr-defined]
    assert out["b"].status is Status.OK  # type: ignore[attr-defined]

    on_broken = Target(key="c", address="192.0.2.10", hostname="mx3.example.net")
    r = _probe(_config(nsd, lists["broken"]), on_broken)["c"]
    assert r.status is Status.UNKNOWN  # type: ignore[attr-defined]
    assert "failed its RFC 5782 test entries" in r.detail  # type: ignore[attr-defined]
    assert r.data["lists"] == [  # type: ignore[attr-defined]
        {
            "zone": lists["broken"],
            "healthy": False,
            "detail": "does not list its test entry 127.0.0.2",
        }
    ]

    refused = _probe(_config(nsd, lists["refusing"]), on_broken)["c"]
    assert refused.status is Status.UNKNOWN  # type: ignore[attr-defined]


def test_one_lookup_per_list_and_address_per_run(nsd: Nsd, lists: dict[str, str]) -> None:
    from probes.runner import _Sweep

    config = _config(nsd, lists["zen"])

    async def go() -> int:
        from datetime import UTC, datetime

        sweep = _Sweep(config, datetime.now(UTC))
        same = [
            Target(key=str(i), address="192.0.2.10", hostname="mx.example.net") for i in range(5)
        ]
        await asyncio.gather(*(sweep.server(t) for t in same))
        return len(sweep.dnsbl_answers)

    assert asyncio.run(go()) == 3  # 192.0.2.10 and the two test entries, for five servers
