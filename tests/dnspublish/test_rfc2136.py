"""The merge rules against a real Knot over RFC 2136 UPDATE with TSIG, one fresh zone per test."""

import itertools
import threading

import pytest

from dnspublish.publish import Outcome, Want, publish_record, remove_record
from dnspublish.rfc2136 import Rfc2136
from tests.support.knot import Knot
from tests.support.nsd import silent_nameserver

_zones = itertools.count()
IP = "192.0.2.10"
DKIM = "v=DKIM1; k=rsa; p=" + "A" * 392  # longer than one TXT string


def zone(knot: Knot, records: str = "") -> str:
    return knot.add_zone(f"z{next(_zones)}-pub.test", records)


def backend(knot: Knot, secret: str | None = None) -> Rfc2136:
    return Rfc2136(knot.server, knot.key_name, secret or knot.secret)


def wants(origin: str, ip: str = IP, selector: str = "pm1") -> list[Want]:
    return [
        Want("mx", "MX", f"{origin}", f"10 mail.{origin}."),
        Want("a", "A", f"mail.{origin}", ip),
        Want("spf", "TXT", origin, f"v=spf1 ip4:{ip} ~all"),
        Want("dkim", "TXT", f"{selector}._domainkey.{origin}", DKIM),
        Want("dmarc", "TXT", f"_dmarc.{origin}", f"v=DMARC1; p=none; rua=mailto:dmarc@{origin}"),
    ]


def publish_all(b: Rfc2136, ws: list[Want], **kw: str) -> dict[str, Outcome]:
    return {w.purpose: publish_record(b, w, **kw) for w in ws}


def test_fresh_zone_gets_every_record_and_loses_them_on_removal(knot: Knot) -> None:
    origin = zone(knot)
    b = backend(knot)
    out = publish_all(b, wants(origin))
    assert {p: o.status for p, o in out.items()} == dict.fromkeys(out, "published")
    assert all(o.zone == origin for o in out.values())
    assert knot.values(origin, "MX") == [f"10 mail.{origin}."]
    assert knot.values(origin, "TXT") == [f"v=spf1 ip4:{IP} ~all"]
    assert knot.values(f"pm1._domainkey.{origin}", "TXT") == [DKIM]
    assert knot.values(f"mail.{origin}", "A") == [IP]
    for w in wants(origin):
        remove_record(b, w, out[w.purpose].owned, zone=origin)
    names = [
        (origin, "MX"),
        (origin, "TXT"),
        (f"mail.{origin}", "A"),
        (f"_dmarc.{origin}", "TXT"),
        (f"pm1._domainkey.{origin}", "TXT"),
    ]
    for name, rtype in names:
        assert knot.values(name, rtype) == []


def test_own_spf_is_merged_into_one_record_and_restored_exactly(knot: Knot) -> None:
    theirs = "v=spf1 include:_spf.google.com ~all"
    origin = zone(knot, f'@ TXT "{theirs}"\n@ TXT "google-site-verification=abc123"')
    b = backend(knot)
    spf = Want("spf", "TXT", origin, f"v=spf1 ip4:{IP} ip6:2001:db8::10 ~all")
    out = publish_record(b, spf)
    assert out.status == "published", out.detail
    merged = f"v=spf1 include:_spf.google.com ip4:{IP} ip6:2001:db8::10 ~all"
    assert knot.values(origin, "TXT") == sorted([merged, "google-site-verification=abc123"])
    assert publish_record(b, spf).status == "published"  # again: nothing doubled
    assert knot.values(origin, "TXT") == sorted([merged, "google-site-verification=abc123"])
    remove_record(b, spf, out.owned, zone=origin)
    assert knot.values(origin, "TXT") == sorted([theirs, "google-site-verification=abc123"])


def test_site_verification_survives_add_and_remove(knot: Knot) -> None:
    origin = zone(knot, '@ TXT "google-site-verification=abc123"\n@ TXT "MS=ms12345"')
    b = backend(knot)
    out = publish_all(b, wants(origin))
    assert "google-site-verification=abc123" in knot.values(origin, "TXT")
    assert "MS=ms12345" in knot.values(origin, "TXT")
    for w in wants(origin):
        remove_record(b, w, out[w.purpose].owned, zone=origin)
    assert knot.values(origin, "TXT") == ["MS=ms12345", "google-site-verification=abc123"]


def test_customer_dmarc_is_kept(knot: Knot) -> None:
    theirs = "v=DMARC1; p=reject; rua=mailto:reports@corp.example"
    origin = zone(knot, f'_dmarc TXT "{theirs}"')
    b = backend(knot)
    w = Want("dmarc", "TXT", f"_dmarc.{origin}", f"v=DMARC1; p=none; rua=mailto:d@{origin}")
    out = publish_record(b, w)
    assert out.status == "published" and "kept the zone's own" in out.detail
    assert knot.values(f"_dmarc.{origin}", "TXT") == [theirs]
    remove_record(b, w, out.owned, zone=origin)
    assert knot.values(f"_dmarc.{origin}", "TXT") == [theirs]


def test_foreign_mx_is_a_conflict_unless_replaced(knot: Knot) -> None:
    origin = zone(knot, "@ MX 10 aspmx.l.google.com.")
    b = backend(knot)
    mx = Want("mx", "MX", origin, f"10 mail.{origin}.")
    out = publish_record(b, mx)
    assert out.status == "conflict"
    assert "aspmx.l.google.com" in out.detail and "mx_policy" in out.detail
    assert knot.values(origin, "MX") == ["10 aspmx.l.google.com."]
    replaced = publish_record(b, mx, mx_policy="replace")
    assert replaced.status == "published"
    assert knot.values(origin, "MX") == [f"10 mail.{origin}."]
    remove_record(b, mx, replaced.owned, zone=origin)
    assert knot.values(origin, "MX") == ["10 aspmx.l.google.com."]


def test_wrong_tsig_secret_is_a_clear_error_and_changes_nothing(knot: Knot) -> None:
    origin = zone(knot)
    b = backend(knot, secret="d3Jvbmcgc2VjcmV0IGZvciB0aGUga2V5IQ==")
    out = publish_record(b, Want("spf", "TXT", origin, f"v=spf1 ip4:{IP} ~all"))
    assert out.status == "error"
    assert knot.key_name in out.detail or "NOTAUTH" in out.detail, out.detail
    assert knot.values(origin, "TXT") == []


def test_unreachable_server_is_a_clear_error() -> None:
    with silent_nameserver() as (host, port):
        b = Rfc2136(f"{host}:{port}", "k.", "c2VjcmV0", timeout=0.5)
        out = publish_record(b, Want("a", "A", "mail.nowhere.test", IP))
    assert out.status == "error"
    assert f"{host}:{port}" in out.detail


def test_lookup_limit_is_refused(knot: Knot) -> None:
    theirs = "v=spf1 " + " ".join(f"include:s{i}.example" for i in range(10)) + " a ~all"
    origin = zone(knot, f'@ TXT "{theirs}"')
    out = publish_record(backend(knot), Want("spf", "TXT", origin, f"v=spf1 a:x.{origin} ~all"))
    assert out.status == "error" and "lookups" in out.detail
    assert knot.values(origin, "TXT") == [theirs]


def test_two_publishers_into_one_zone_at_once_lose_nothing(knot: Knot) -> None:
    """Two workspaces (two sending IPs, two DKIM selectors) merge into the same SPF at once."""
    origin = zone(knot, '@ TXT "v=spf1 include:_spf.google.com ~all"')
    ips = [f"192.0.2.{i}" for i in range(20, 28)]
    barrier = threading.Barrier(len(ips))
    results: dict[str, str] = {}

    def run(i: int, ip: str) -> None:
        b = backend(knot)
        barrier.wait()
        for w in [
            Want("spf", "TXT", origin, f"v=spf1 ip4:{ip} ~all"),
            Want("dkim", "TXT", f"pm{i}._domainkey.{origin}", DKIM),
        ]:
            results[f"{w.purpose}{i}"] = publish_record(b, w).status

    threads = [threading.Thread(target=run, args=(i, ip)) for i, ip in enumerate(ips)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results.values()) == {"published"}, results
    (record,) = knot.values(origin, "TXT")
    assert record.startswith("v=spf1 include:_spf.google.com ") and record.endswith(" ~all")
    assert sorted(record.split()[2:-1]) == sorted(f"ip4:{ip}" for ip in ips)
    for i in range(len(ips)):
        assert knot.values(f"pm{i}._domainkey.{origin}", "TXT") == [DKIM]


def test_zone_is_found_by_walking_soa(knot: Knot) -> None:
    origin = zone(knot)
    assert backend(knot).find_zone(f"a.b.{origin}") == origin
    with pytest.raises(Exception, match=r"not authoritative|no SOA"):
        backend(knot).find_zone("elsewhere.example")
