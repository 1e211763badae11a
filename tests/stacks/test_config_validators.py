"""The stack config's checks as functions of plain values, the way the API calls them to refuse
up front what the program would refuse: each names the key it is given and says why, and accepts
a good value."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from stacks import config as c
from stacks.catalog import DEFAULT
from stacks.config import NS, ConfigError
from tests.support.stack_fleet import (
    ADMIN_PASSWORD,
    DKIM_PRIVATE,
    DKIM_PUBLIC,
    SSH_PRIVATE,
    SSH_PUBLIC,
    domain,
    mailbox,
    server,
)

K = "field"  # any key the caller names; the checks use it as given
Check = Callable[..., Any]

# (check, arguments, exact reason) for a bad value: raises ConfigError(K, reason)
REFUSED: list[tuple[Check, tuple[Any, ...], str]] = [
    (c.validate_required, ("",), "is required"),
    (c.validate_stalwart_version, ("v0.15",),
     "'v0.15' is not a release tag (vMAJOR.MINOR.PATCH, e.g. v0.16.18)"),
    (c.validate_stalwart_version, ("v0.15.6",),
     "'v0.15.6' is not a Stalwart release (known: v0.12.0..v0.15.5, v0.16.0..v0.16.18); a newer "
     "release can be allowed with stalwartReleases / PENGUINMAILS_STALWART_RELEASES"),
    (c.validate_email, ("postmaster@localhost",), "is not an email address"),
    (c.validate_server_name, ("mx.1",), "must be a DNS label: a-z, 0-9 and '-', 1-63 long"),
    (c.validate_hostname, ("mx1.",), "'mx1.' is not a fully qualified name"),
    (c.validate_hostname, ("mx1.example.123",), "'mx1.example.123' is not a fully qualified name"),
    (c.validate_server_ip, ("existing", None), "an existing server needs its IP address"),
    (c.validate_server_ip, ("existing", "mx1.example.net"),
     "an existing server needs its IP address"),
    (c.validate_server_ip, ("hetzner", "192.0.2.1"),
     "only existing servers take an ip (hetzner assigns one)"),
    (c.validate_ssh_user, ("-admin",), "is not a valid user name"),
    (c.validate_ssh_port, (0,), "must be between 1 and 65535"),
    (c.validate_ssh_port, (65536,), "must be between 1 and 65535"),
    (c.validate_ssh_public_key, (None,), "an OpenSSH public key is required"),
    (c.validate_ssh_public_key, ("rsa-AAAA",), "an OpenSSH public key is required"),
    (c.validate_ssh_private_key, ("",), "a PEM/OpenSSH private key is required"),
    (c.validate_ssh_private_key, ("-----BEGIN PUBLIC KEY-----",),
     "a PEM/OpenSSH private key is required"),
    (c.validate_admin_password, (None,), "is required (at least 12 characters)"),
    (c.validate_admin_password, ("a" * 11,), "is required (at least 12 characters)"),
    (c.validate_domain_name, ("localhost",), "'localhost' is not a domain name"),
    (c.validate_dkim_selector, ("-pm1",), "must be a DNS label"),
    (c.validate_dkim_algorithm, ("ed448",), "must be rsa or ed25519"),
    (c.validate_dkim_public_key, ("",), "must be the base64 public key (p= value)"),
    (c.validate_dkim_private_key, (DKIM_PUBLIC,), "must be a PEM private key"),
    (c.validate_dkim_private_key, ("-----BEGIN PUBLIC KEY-----",), "must be a PEM private key"),
    (c.validate_mailbox_address, ("sales@",), "'sales@' is not an email address"),
    (c.validate_mailbox_address, ("@example.com",), "'@example.com' is not an email address"),
    (c.validate_quota_mb, (0,), "must be between 1 and 10000000"),
    (c.validate_quota_mb, (10_000_001,), "must be between 1 and 10000000"),
    (c.validate_daily_limit, (0,), "must be between 1 and 1000000"),
    (c.validate_daily_limit, (1_000_001,), "must be between 1 and 1000000"),
    (c.validate_daily_limit, (True,), "must be between 1 and 1000000"),
    (c.validate_mailbox_password, ("1234567",), "at least 8 characters"),
    (c.validate_unused, ("mx1", {"mx1", "mx2"}), "'mx1' is taken"),
    (c.validate_mailbox_domain, ("example.org", {"example.com"}),
     f"domain 'example.org' is not in {NS}:domains"),
    (c.validate_mailbox_server, ("mx2", {"mx1"}), f"no server named 'mx2' in {NS}:servers"),
]  # fmt: skip

# (check, arguments) for a good value: returns without raising
ACCEPTED: list[tuple[Check, tuple[Any, ...]]] = [
    (c.validate_required, ("w",)),
    (c.validate_stalwart_version, ("v0.13.4",)),
    (c.validate_stalwart_version, ("v0.16.18",)),
    (c.validate_email, ("postmaster@example.com",)),
    (c.validate_server_name, ("mx-1",)),
    (c.validate_hostname, ("mx1.mail.example.net",)),
    (c.validate_server_ip, ("existing", "198.51.100.7")),
    (c.validate_server_ip, ("existing", "2001:db8::7")),
    (c.validate_server_ip, ("hostwinds", None)),
    (c.validate_ssh_user, ("deploy_1",)),
    (c.validate_ssh_port, (2222,)),
    (c.validate_ssh_public_key, (SSH_PUBLIC,)),
    (c.validate_ssh_private_key, (SSH_PRIVATE,)),
    (c.validate_admin_password, (ADMIN_PASSWORD,)),
    (c.validate_domain_name, ("mail.example.co.uk",)),
    (c.validate_dkim_selector, ("pm1",)),
    (c.validate_dkim_algorithm, ("rsa",)),
    (c.validate_dkim_public_key, (DKIM_PUBLIC,)),
    (c.validate_dkim_private_key, (DKIM_PRIVATE,)),
    (c.validate_mailbox_address, ("first.last+tag@example.com",)),
    (c.validate_quota_mb, (2048,)),
    (c.validate_daily_limit, (50,)),
    (c.validate_mailbox_password, ("12345678",)),
    (c.validate_unused, ("mx3", {"mx1", "mx2"})),
    (c.validate_mailbox_domain, ("example.com", {"example.com"})),
    (c.validate_mailbox_server, ("mx1", {"mx1"})),
]  # fmt: skip


def _args(check: Check, args: tuple[Any, ...]) -> tuple[Any, ...]:
    # The key comes last, except in validate_unused (value, taken, key, reason).
    return (*args, K, "is taken") if check is c.validate_unused else (*args, K)


@pytest.mark.parametrize(
    ("check", "args", "reason"), REFUSED, ids=[f"{r[0].__name__}-{r[1][0]!r}" for r in REFUSED]
)
def test_check_refuses_a_bad_value_naming_the_key(
    check: Check, args: tuple[Any, ...], reason: str
) -> None:
    with pytest.raises(ConfigError) as err:
        check(*_args(check, args))
    assert (err.value.key, err.value.reason) == (K, reason)


@pytest.mark.parametrize(
    ("check", "args"), ACCEPTED, ids=[f"{a[0].__name__}-{a[1][0]!r}" for a in ACCEPTED]
)
def test_check_accepts_a_good_value(check: Check, args: tuple[Any, ...]) -> None:
    assert check(*_args(check, args)) is None


def test_every_check_has_a_refused_and_an_accepted_case() -> None:
    checks = {name for name in dir(c) if name.startswith("validate_")}
    composite = {
        "validate_workspace",
        "validate_catalog",
        "validate_offer",
        "validate_servers",
        "validate_server",
        "validate_server_credentials",
        "validate_provider_credentials",
        "validate_domains",
        "validate_domain",
        "validate_mailboxes",
        "validate_mailbox",
        "validate_dns",  # tests/stacks/test_dns.py
        "validate_pin_changes",
    }
    assert {r[0].__name__ for r in REFUSED} == checks - composite
    assert {a[0].__name__ for a in ACCEPTED} == checks - composite


# The composite checks: a record against what is already there.

PREFIX = f"{NS}:servers[3]"


def test_workspace_fields() -> None:
    c.validate_workspace("w", "t", "v0.15.5", None)
    c.validate_workspace("w", "t", "v0.15.5", "ops@example.com")
    with pytest.raises(ConfigError) as err:
        c.validate_workspace("w", "", "v0.15.5", None)
    assert err.value.key == f"{NS}:tenantId"
    with pytest.raises(ConfigError) as err:
        c.validate_workspace("w", "t", "v0.15.5", "ops")
    assert err.value.key == f"{NS}:acmeEmail"


def test_pin_changes_across_the_016_line_are_refused() -> None:
    from tests.support.stack_fleet import fleet_config

    config = fleet_config(servers=(server("mx1"), server("mx2", stalwart_version="v0.16.0")))
    c.validate_pin_changes(config, None)
    c.validate_pin_changes(config, {"mx1": {"stalwart_version": "v0.16.1"}})
    with pytest.raises(ConfigError) as err:
        c.validate_pin_changes(config, {"mx2": {"stalwart_version": "v0.14.1"}})
    assert err.value.key == f"{NS}:servers[1].stalwartVersion"
    assert err.value.reason.startswith(
        "server mx2: cannot move from v0.14.1 to v0.16.0 in place: 0.16 needs an offline migration"
    )
    old = fleet_config(servers=(server("mx1", stalwart_version="v0.15.5"),))
    with pytest.raises(ConfigError) as err:
        c.validate_pin_changes(old, {"mx1": {"stalwart_version": "v0.16.0"}})
    assert "0.16 data cannot be read by 0.15" in err.value.reason


def test_catalog_merges_overrides_or_names_the_catalog() -> None:
    merged = c.validate_catalog({"hetzner": {"sizes": {"starter": {"type": "cx53"}}}})
    assert merged.offer("hetzner", "starter", "eu-central").type == "cx53"
    assert c.validate_catalog(None).table == DEFAULT.table
    with pytest.raises(ConfigError) as err:
        c.validate_catalog([1])  # type: ignore[arg-type]
    assert err.value.key == f"{NS}:catalog"
    assert err.value.reason.startswith("cannot be merged: ")


def test_offer_names_the_field_the_catalog_refuses() -> None:
    c.validate_offer(DEFAULT, "hostwinds", "business", "eu-west", PREFIX)
    with pytest.raises(ConfigError) as err:
        c.validate_offer(DEFAULT, "hostwinds", "business", "ap-southeast", PREFIX)
    assert err.value.key == f"{PREFIX}.region"
    assert err.value.reason.startswith("region 'ap-southeast' is not offered by hostwinds")
    broken = DEFAULT.with_overrides({"hostwinds": {"sizes": {"business": {"cpu": "four"}}}})
    with pytest.raises(ConfigError) as err:
        c.validate_offer(broken, "hostwinds", "business", "eu-west", PREFIX)
    assert err.value.key == f"{NS}:catalog"
    assert err.value.reason.startswith("override is malformed: ")


def test_server_against_the_servers_already_there() -> None:
    new = server("mx3", provider="existing")
    c.validate_server(new, PREFIX, DEFAULT)
    c.validate_server(new, PREFIX, DEFAULT, {"mx1"}, {"mx1.mail.example.net"})
    with pytest.raises(ConfigError) as err:
        c.validate_server(new, PREFIX, DEFAULT, {"mx3"})
    assert (err.value.key, err.value.reason) == (
        f"{PREFIX}.name",
        "'mx3' is used by another server",
    )
    with pytest.raises(ConfigError) as err:
        c.validate_server(new, PREFIX, DEFAULT, (), {"mx3.mail.example.net"})
    assert err.value.key == f"{PREFIX}.hostname"
    # The ssh user is an existing server's only: an ordered one runs as root.
    c.validate_server(server("mx4", ssh_user="Not Checked"), PREFIX, DEFAULT)
    with pytest.raises(ConfigError) as err:
        c.validate_server(replace(new, ssh_user="Not Valid"), PREFIX, DEFAULT)
    assert err.value.key == f"{PREFIX}.sshUser"


def test_servers_are_checked_in_turn_and_their_names_returned() -> None:
    assert c.validate_servers((server("mx1"), server("mx2")), DEFAULT) == {"mx1", "mx2"}
    assert c.validate_servers((), DEFAULT) == set()
    with pytest.raises(ConfigError) as err:
        c.validate_servers((server("mx1"), server("mx2"), server("mx2")), DEFAULT)
    assert err.value.key == f"{NS}:servers[2].name"


def test_server_credentials() -> None:
    c.validate_server_credentials(SSH_PUBLIC, SSH_PRIVATE, ADMIN_PASSWORD)
    with pytest.raises(ConfigError) as err:
        c.validate_server_credentials(SSH_PUBLIC, SSH_PRIVATE, None)
    assert err.value.key == f"{NS}:stalwartAdminPassword"


@pytest.mark.parametrize(
    ("providers", "hetzner", "hostwinds", "key"),
    [
        ({"hetzner"}, "token", None, None),
        ({"hostwinds"}, None, "key", None),
        ({"existing"}, None, None, None),
        (set(), None, None, None),
        ({"hetzner", "existing"}, None, "key", f"{NS}:hetznerToken"),
        ({"hostwinds"}, "token", "", f"{NS}:hostwindsApiKey"),
    ],
)
def test_provider_credentials_for_the_providers_in_use(
    providers: set[str], hetzner: str | None, hostwinds: str | None, key: str | None
) -> None:
    if key is None:
        c.validate_provider_credentials(providers, hetzner, hostwinds)
        return
    with pytest.raises(ConfigError) as err:
        c.validate_provider_credentials(providers, hetzner, hostwinds)
    assert err.value.key == key


def test_domain_against_the_domains_already_there() -> None:
    key = f"{NS}:domains[2]"
    c.validate_domain(domain("example.org"), key)
    c.validate_domain(domain("example.org"), key, {"example.com"})
    with pytest.raises(ConfigError) as err:
        c.validate_domain(domain("example.org"), key, {"example.org"})
    assert (err.value.key, err.value.reason) == (f"{key}.name", "'example.org' is listed twice")
    with pytest.raises(ConfigError) as err:
        c.validate_domain(replace(domain("example.org"), dkim_private_key="x"), key)
    assert err.value.key == f'{NS}:dkimPrivateKeys["example.org"]'


def test_domains_are_checked_in_turn_and_their_names_returned() -> None:
    assert c.validate_domains((domain("a.example"), domain("b.example"))) == {
        "a.example",
        "b.example",
    }
    with pytest.raises(ConfigError) as err:
        c.validate_domains((domain("a.example"), domain("a.example")))
    assert err.value.key == f"{NS}:domains[1].name"


def test_mailbox_against_the_fleet_and_the_mailboxes_already_there() -> None:
    key = f"{NS}:mailboxes[5]"
    box = mailbox("sales@example.com", "mx1")
    c.validate_mailbox(box, key, {"example.com"}, {"mx1"})
    c.validate_mailbox(box, key, {"example.com"}, {"mx1"}, {"ops@example.com"})
    faults = [
        (({"example.com"}, {"mx1"}, {"sales@example.com"}), f"{key}.address", "listed twice"),
        (({"example.org"}, {"mx1"}, ()), f"{key}.address", "is not in"),
        (({"example.com"}, {"mx2"}, ()), f"{key}.server", "no server named"),
    ]
    for (domains, servers, taken), named, says in faults:
        with pytest.raises(ConfigError) as err:
            c.validate_mailbox(box, key, domains, servers, taken)
        assert err.value.key == named
        assert says in err.value.reason
    with pytest.raises(ConfigError) as err:
        c.validate_mailbox(replace(box, password="x"), key, {"example.com"}, {"mx1"})
    assert err.value.key == f'{NS}:mailboxPasswords["sales@example.com"]'


def test_mailboxes_are_checked_in_turn() -> None:
    boxes = (mailbox("a@example.com"), mailbox("b@example.com"), mailbox("a@example.com"))
    c.validate_mailboxes(boxes[:2], {"example.com"}, {"mx1"})
    with pytest.raises(ConfigError) as err:
        c.validate_mailboxes(boxes, {"example.com"}, {"mx1"})
    assert err.value.key == f"{NS}:mailboxes[2].address"
