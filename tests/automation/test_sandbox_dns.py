"""Sandbox workspaces simulate servers but publish DNS records for real: the program's DNS
record resources write into a Knot on loopback through RFC 2136 (TSIG), preview writes nothing,
a broken connection is the record's error (never the run's), and dropping the records takes out
exactly ours."""

import itertools
from dataclasses import replace

from automation.sandbox.engine import SandboxEngine
from stacks.config import DnsConnectionSpec, DnsRecordSpec, FleetConfig
from stacks.dns import TYPE
from tests.support.knot import Knot
from tests.support.stack_fleet import domain, fleet_config, mailbox, server

_n = itertools.count()
SITE = "google-site-verification=abc123"
THEIRS = "v=spf1 include:_spf.google.com ~all"


def connection(knot: Knot, secret: str | None = None, cid: str = "1") -> DnsConnectionSpec:
    return DnsConnectionSpec(
        id=f"c0ffee00-0000-4000-8000-00000000000{cid}",
        kind="rfc2136",
        settings={"server": knot.server, "tsig_key_name": knot.key_name},
        credentials={"tsig_secret": secret or knot.secret},
    )


def fleet(zone: str, conn: DnsConnectionSpec, ip: str = "192.0.2.10") -> FleetConfig:
    def rec(purpose: str, rtype: str, name: str, value: str) -> DnsRecordSpec:
        return DnsRecordSpec(conn.id, zone, purpose, rtype, name, value, ttl=60)

    return fleet_config(
        servers=(server("mx1"),),
        domains=(domain(zone),),
        mailboxes=(mailbox(f"a@{zone}"),),
        dns_connections=(conn,),
        dns_records=(
            rec("mx", "MX", "@", f"10 mail.{zone}."),
            rec("a", "A", "mail", ip),
            rec("spf", "TXT", "@", f"v=spf1 ip4:{ip} ~all"),
            rec("dkim", "TXT", "pm1._domainkey", '"v=DKIM1; k=rsa; p=AAAA" "BBBB"'),
        ),
    )


def test_up_publishes_for_real_and_removal_restores_the_zone(knot: Knot) -> None:
    zone = knot.add_zone(f"sb{next(_n)}.test", f'@ TXT "{THEIRS}"\n@ TXT "{SITE}"')
    engine = SandboxEngine.in_memory()
    config = fleet(zone, connection(knot))
    preview = engine.preview("ws-dns", config)
    assert any(c.type == TYPE for c in preview.changes)
    assert knot.values(f"mail.{zone}", "A") == []  # a preview writes nothing

    result = engine.up("ws-dns", config)
    outcomes = {o["purpose"]: o for o in result.outputs["dns"].values()}
    assert {p: o["status"] for p, o in outcomes.items()} == dict.fromkeys(outcomes, "published")
    assert outcomes["spf"]["zone"] == zone
    assert knot.values(zone, "TXT") == sorted(
        [SITE, "v=spf1 include:_spf.google.com ip4:192.0.2.10 ~all"]
    )
    assert knot.values(f"pm1._domainkey.{zone}", "TXT") == ["v=DKIM1; k=rsa; p=AAAABBBB"]
    assert knot.values(f"mail.{zone}", "A") == ["192.0.2.10"]
    again = engine.up("ws-dns", config)
    assert [c for c in again.changes if c.type == TYPE] == []

    gone = engine.up("ws-dns", replace(config, dns_records=()))
    assert sum(1 for c in gone.changes if c.type == TYPE and c.op == "delete") == 4
    assert knot.values(zone, "TXT") == sorted([SITE, THEIRS])
    assert knot.values(zone, "MX") == []
    assert knot.values(f"mail.{zone}", "A") == []


def test_a_wrong_secret_is_the_records_error_not_the_runs(knot: Knot) -> None:
    zone = knot.add_zone(f"sb{next(_n)}.test")
    engine = SandboxEngine.in_memory()
    bad = fleet(zone, connection(knot, secret="d3Jvbmcgc2VjcmV0IGZvciB0aGUga2V5IQ=="))
    result = engine.up("ws-bad", bad)  # the run itself succeeds: servers and mailboxes are made
    assert "a@" + zone in result.outputs["mailboxes"]
    statuses = {o["status"] for o in result.outputs["dns"].values()}
    assert statuses == {"error"}
    detail = next(iter(result.outputs["dns"].values()))["detail"]
    assert knot.key_name in detail or "NOTAUTH" in detail
    # Fixed credentials: the next run tries again and publishes.
    fixed = engine.up("ws-bad", fleet(zone, connection(knot)))
    assert {o["status"] for o in fixed.outputs["dns"].values()} == {"published"}
    assert knot.values(f"mail.{zone}", "A") == ["192.0.2.10"]


def test_two_workspaces_publish_into_one_zone_without_losing_either(knot: Knot) -> None:
    zone = knot.add_zone(f"sb{next(_n)}.test", f'@ TXT "{THEIRS}"')
    one = fleet(zone, connection(knot, cid="1"), ip="192.0.2.21")
    two = fleet(zone, connection(knot, cid="2"), ip="192.0.2.22")
    first = SandboxEngine.in_memory().up("ws-one", one)
    second = SandboxEngine.in_memory().up("ws-two", two)
    assert {o["purpose"]: o["status"] for o in first.outputs["dns"].values()}["spf"] == "published"
    by_purpose = {o["purpose"]: o for o in second.outputs["dns"].values()}
    assert by_purpose["spf"]["status"] == "published"
    assert by_purpose["mx"]["status"] == "published"  # the same MX host: already there
    assert by_purpose["a"]["status"] == "conflict"  # mail.<zone> is the first one's address
    (spf,) = knot.values(zone, "TXT")
    assert spf == "v=spf1 include:_spf.google.com ip4:192.0.2.21 ip4:192.0.2.22 ~all"


def test_a_new_value_replaces_ours_in_place(knot: Knot) -> None:
    """A second server joins (the SPF lists both) and the first changes address (the A record):
    each is an update of the same resource, ours swapped in place, the customer's kept."""
    zone = knot.add_zone(f"sb{next(_n)}.test", f'@ TXT "{THEIRS}"\n@ TXT "{SITE}"')
    engine = SandboxEngine.in_memory()
    conn = connection(knot)
    first = fleet(zone, conn, ip="192.0.2.31")
    engine.up("ws-move", first)
    assert knot.values(zone, "TXT") == sorted(
        [SITE, "v=spf1 include:_spf.google.com ip4:192.0.2.31 ~all"]
    )

    def with_values(spf: str, a: str) -> FleetConfig:
        records = tuple(
            replace(r, value=spf)
            if r.purpose == "spf"
            else replace(r, value=a)
            if r.purpose == "a"
            else r
            for r in first.dns_records
        )
        return replace(first, dns_records=records)

    both = engine.up(
        "ws-move", with_values("v=spf1 ip4:192.0.2.31 ip4:192.0.2.32 ~all", "192.0.2.31")
    )
    assert {c.op for c in both.changes if c.type == TYPE} == {"update"}
    assert knot.values(zone, "TXT") == sorted(
        [SITE, "v=spf1 include:_spf.google.com ip4:192.0.2.31 ip4:192.0.2.32 ~all"]
    )
    moved = engine.up(
        "ws-move", with_values("v=spf1 ip4:192.0.2.33 ip4:192.0.2.32 ~all", "192.0.2.33")
    )
    outcomes = {o["purpose"]: o for o in moved.outputs["dns"].values()}
    assert outcomes["a"]["status"] == "published", outcomes["a"]["detail"]
    assert knot.values(f"mail.{zone}", "A") == ["192.0.2.33"]
    (spf,) = [v for v in knot.values(zone, "TXT") if v.startswith("v=spf1")]
    assert sorted(spf.split()[2:-1]) == ["ip4:192.0.2.32", "ip4:192.0.2.33"]

    engine.up("ws-move", replace(first, dns_records=()))
    assert knot.values(zone, "TXT") == sorted([SITE, THEIRS])  # exactly as it was
    assert knot.values(f"mail.{zone}", "A") == []


def test_an_unreachable_server_is_the_records_error_not_the_runs(knot: Knot) -> None:
    from tests.support.nsd import silent_nameserver

    zone = f"sb{next(_n)}.test"
    engine = SandboxEngine.in_memory()
    engine.dns_timeout = 0.3
    with silent_nameserver() as (host, port):
        down = replace(
            connection(knot), settings={"server": f"{host}:{port}", "tsig_key_name": knot.key_name}
        )
        result = engine.up("ws-down", fleet(zone, down))
    assert f"a@{zone}" in result.outputs["mailboxes"]
    for outcome in result.outputs["dns"].values():
        assert outcome["status"] == "error"
        assert f"{host}:{port}" in outcome["detail"]
        assert "refused the connection" in outcome["detail"] or "no answer" in outcome["detail"]
