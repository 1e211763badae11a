"""The same merge rules through dns-lexicon's `powerdns` provider against a real PowerDNS
Authoritative and its HTTP API on loopback; records read back over DNS."""

import itertools

from dnspublish.connect import backend_for
from dnspublish.lexicon import LexiconBackend
from dnspublish.publish import Want, publish_record, remove_record
from tests.support.pdns import PowerDns

_n = itertools.count()
IP = "192.0.2.44"
DKIM = "v=DKIM1; k=rsa; p=" + "B" * 392


def backend(pdns: PowerDns, token: str | None = None) -> LexiconBackend:
    made = backend_for(
        "lexicon",
        {"provider": "powerdns"},
        {"auth_token": token or pdns.api_key, "pdns_server": pdns.api_url},
    )
    assert isinstance(made, LexiconBackend)
    return made


def test_fresh_zone_then_removal(pdns: PowerDns) -> None:
    zone = pdns.add_zone(f"lx{next(_n)}.test")
    b = backend(pdns)
    wants = [
        Want("mx", "MX", zone, f"10 mail.{zone}."),
        Want("a", "A", f"mail.{zone}", IP),
        Want("spf", "TXT", zone, f"v=spf1 ip4:{IP} ~all"),
        Want("dkim", "TXT", f"pm1._domainkey.{zone}", DKIM),
    ]
    out = {w.purpose: publish_record(b, w) for w in wants}
    assert {p: o.status for p, o in out.items()} == dict.fromkeys(out, "published"), {
        p: o.detail for p, o in out.items()
    }
    assert out["a"].zone == zone  # found by walking up the names the provider hosts
    assert pdns.values(zone, "MX") == [f"10 mail.{zone}."]
    assert pdns.values(f"mail.{zone}", "A") == [IP]
    assert pdns.values(zone, "TXT") == [f"v=spf1 ip4:{IP} ~all"]
    assert pdns.values(f"pm1._domainkey.{zone}", "TXT") == [DKIM]
    for w in wants:
        remove_record(b, w, out[w.purpose].owned, zone=zone)
    assert pdns.values(zone, "MX") == [] and pdns.values(zone, "TXT") == []


def test_own_spf_merged_and_restored_site_verification_kept(pdns: PowerDns) -> None:
    theirs = "v=spf1 include:_spf.google.com ~all"
    site = "google-site-verification=lexicon"
    zone = pdns.add_zone(f"lx{next(_n)}.test", [("@", "TXT", [f'"{theirs}"', f'"{site}"'])])
    b = backend(pdns)
    spf = Want("spf", "TXT", zone, f"v=spf1 ip4:{IP} ~all")
    out = publish_record(b, spf)
    assert out.status == "published", out.detail
    assert pdns.values(zone, "TXT") == sorted(
        [f"v=spf1 include:_spf.google.com ip4:{IP} ~all", site]
    )
    remove_record(b, spf, out.owned, zone=zone)
    assert pdns.values(zone, "TXT") == sorted([theirs, site])


def test_customer_dmarc_kept_and_foreign_mx_conflict(pdns: PowerDns) -> None:
    dmarc = "v=DMARC1; p=quarantine; rua=mailto:r@corp.example"
    zone = pdns.add_zone(
        f"lx{next(_n)}.test",
        [("_dmarc", "TXT", [f'"{dmarc}"']), ("@", "MX", ["5 mx.other.example."])],
    )
    b = backend(pdns)
    kept = publish_record(b, Want("dmarc", "TXT", f"_dmarc.{zone}", "v=DMARC1; p=none"))
    assert kept.status == "published" and "kept" in kept.detail
    assert pdns.values(f"_dmarc.{zone}", "TXT") == [dmarc]
    mx = publish_record(b, Want("mx", "MX", zone, f"10 mail.{zone}."))
    assert mx.status == "conflict" and "mx.other.example" in mx.detail
    assert pdns.values(zone, "MX") == ["5 mx.other.example."]


def test_wrong_api_key_and_unreachable_api_are_clear_errors(pdns: PowerDns) -> None:
    zone = pdns.add_zone(f"lx{next(_n)}.test")
    wrong = publish_record(backend(pdns, token="wrong"), Want("a", "A", f"mail.{zone}", IP))
    assert wrong.status == "error" and "401" in wrong.detail, wrong.detail
    unreachable = backend_for(
        "lexicon",
        {"provider": "powerdns"},
        {"auth_token": "x", "pdns_server": "http://127.0.0.1:9"},
    )
    assert unreachable is not None
    out = publish_record(unreachable, Want("a", "A", f"mail.{zone}", IP))
    assert out.status == "error" and "127.0.0.1:9" in out.detail, out.detail
