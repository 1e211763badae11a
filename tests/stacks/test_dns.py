"""The DNS record resources of the program, under Pulumi's mock runtime: one per record value,
after the servers, credentials secret, and the `dns` output naming each record's outcome."""

from dataclasses import replace

import pytest

from stacks.config import NS, ConfigError, DnsConnectionSpec, DnsRecordSpec, FleetConfig
from stacks.dns import TYPE
from tests.support.stack_fleet import domain, evaluate, fleet_config, mailbox, server

CONNECTION = DnsConnectionSpec(
    id="c0ffee00-0000-4000-8000-000000000001",
    kind="rfc2136",
    settings={"server": "127.0.0.1:5300", "tsig_key_name": "pm.", "tsig_algorithm": "hmac-sha256"},
    credentials={"tsig_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQ="},
)


def record(
    purpose: str, rtype: str, name: str, value: str, domain: str = "example.com"
) -> DnsRecordSpec:
    return DnsRecordSpec(CONNECTION.id, domain, purpose, rtype, name, value, ttl=300)


RECORDS = (
    record("mx", "MX", "@", "10 mx1.mail.example.net."),
    record("spf", "TXT", "@", "v=spf1 ip4:192.0.2.1 ~all"),
    record("dkim", "TXT", "pm1._domainkey", '"v=DKIM1; k=rsa; p=AAAA" "BBBB"'),
    record("dmarc", "TXT", "_dmarc", "v=DMARC1; p=none"),
    record("mx", "MX", "@", "10 mx1.mail.example.net.", domain="example.org"),
)


def config() -> FleetConfig:
    return fleet_config(
        servers=(server("mx1"),),
        domains=(domain("example.com"), domain("example.org")),
        mailboxes=(mailbox("a@example.com"), mailbox("b@example.org")),
        dns_connections=(CONNECTION,),
        dns_records=RECORDS,
    )


def test_each_record_is_a_resource_with_its_inputs_per_domain() -> None:
    done = evaluate(config())
    made = done.recorder.of_type(TYPE)
    assert sorted(r.name for r in made) == sorted(r.logical_name for r in RECORDS)
    by_name = {r.name: r for r in made}
    dkim = by_name[RECORDS[2].logical_name]
    assert dkim.input("fqdn") == "pm1._domainkey.example.com"
    assert dkim.input("type") == "TXT" and dkim.input("purpose") == "dkim"
    assert dkim.input("kind") == "rfc2136"
    assert dkim.input("settings")["server"] == "127.0.0.1:5300"
    assert dkim.is_secret("credentials")
    assert dkim.input("credentials") == {"tsig_secret": CONNECTION.credentials["tsig_secret"]}
    org = by_name[RECORDS[4].logical_name]
    assert org.input("domain") == "example.org" and org.input("fqdn") == "example.org"
    # The records come after the servers they name.
    order = [r.type for r in done.recorder.resources]
    assert order.index(TYPE) > order.index("hcloud:index/server:Server")
    assert set(done.outputs["dns"]) == {r.logical_name for r in RECORDS}
    assert done.outputs["dns"][RECORDS[0].logical_name]["domain"] == "example.com"


def test_no_connection_means_no_dns_resources() -> None:
    done = evaluate(replace(config(), dns_records=(), dns_connections=()))
    assert done.recorder.of_type(TYPE) == []
    assert done.outputs["dns"] == {}


def test_round_trip_keeps_records_and_hides_credentials() -> None:
    c = config()
    rendered = c.to_stack_config()
    assert rendered[f"{NS}:dnsCredentials"].secret
    assert "c2VjcmV0" not in rendered[f"{NS}:dnsConnections"].value
    assert FleetConfig.from_stack_config({k: v.value for k, v in rendered.items()}) == c
    assert "c2VjcmV0" not in repr(c)


def test_a_record_naming_an_unknown_connection_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        replace(config(), dns_connections=())
    assert err.value.key == f"{NS}:dnsRecords[0].connection"


def test_one_resource_per_name_except_where_a_domain_has_several() -> None:
    a = record("spf", "TXT", "@", "v=spf1 ip4:192.0.2.1 ~all")
    b = record("spf", "TXT", "@", "v=spf1 ip4:192.0.2.2 ~all")
    assert a.logical_name == b.logical_name  # a new value is an update of the same resource
    assert a.logical_name.startswith("dns-example.com-spf-")
    mx1 = record("mx", "MX", "@", "10 mx1.mail.example.net.")
    mx2 = record("mx", "MX", "@", "10 mx2.mail.example.net.")
    assert mx1.logical_name != mx2.logical_name  # one MX per server
