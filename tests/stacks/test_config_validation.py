"""What `FleetConfig` refuses, check by check: the exact key and message of every check, the
boundary values each check still accepts, and which error wins when a config has two faults (the
checks run in a fixed order: workspace fields, catalog, servers one by one, their credentials,
domains one by one, mailboxes one by one)."""

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from stacks.config import NS, ConfigError, FleetConfig
from tests.support.stack_fleet import fleet_config, mailbox, server

S, D, M = f"{NS}:servers", f"{NS}:domains", f"{NS}:mailboxes"
Build = Callable[[], FleetConfig]
Changes = dict[int, dict[str, Any]]
T = TypeVar("T")


def fleet(
    servers: Changes | None = None,
    domains: Changes | None = None,
    mailboxes: Changes | None = None,
    **fields: Any,
) -> Build:
    """A builder for the base fleet with the given changes, all applied in one construction:
    servers mx1 (hetzner), own (existing), hw (hostwinds); domain example.com (a second domain
    extra1.example.org is added when `domains` names index 1); sales@ on mx1, ops@ on own."""

    def build() -> FleetConfig:
        base = fleet_config(
            servers=(
                server("mx1"),
                server("own", provider="existing"),
                server("hw", provider="hostwinds"),
            ),
            mailboxes=(mailbox("sales@example.com", "mx1"), mailbox("ops@example.com", "own")),
        )
        d = base.domains
        if 1 in (domains or {}):
            d = (*d, replace(d[0], name="extra1.example.org"))
        return replace(
            base,
            servers=_changed(base.servers, servers),
            domains=_changed(d, domains),
            mailboxes=_changed(base.mailboxes, mailboxes),
            **fields,
        )

    return build


def _changed(items: tuple[T, ...], changes: Changes | None) -> tuple[T, ...]:
    out = list(items)
    for i, kw in (changes or {}).items():
        out[i] = replace(out[i], **kw)  # type: ignore[type-var]
    return tuple(out)


VERSION_PIN = (
    "is not a supported pin: use a release tag v0.12.x..v0.15.x "
    "(v0.16 replaced the REST management API these scripts use)"
)
PROVIDERS = "hetzner, hostwinds, existing"
SIZES = "starter, professional, business"
REGIONS = "eu-central, eu-west, eu-north, us-east, us-west, ap-southeast"

# (id, config, key named, exact reason)
FAULTS: list[tuple[str, Build, str, str]] = [
    ("workspace-id", fleet(workspace_id=""), f"{NS}:workspaceId", "is required"),
    ("tenant-id", fleet(tenant_id=""), f"{NS}:tenantId", "is required"),
    ("version-v0.16", fleet(stalwart_version="v0.16.0"), f"{NS}:stalwartVersion",
     f"'v0.16.0' {VERSION_PIN}"),
    ("version-v0.11", fleet(stalwart_version="v0.11.9"), f"{NS}:stalwartVersion",
     f"'v0.11.9' {VERSION_PIN}"),
    ("version-untagged", fleet(stalwart_version="0.15.5"), f"{NS}:stalwartVersion",
     f"'0.15.5' {VERSION_PIN}"),
    ("acme-email", fleet(acme_email="postmaster"), f"{NS}:acmeEmail", "is not an email address"),
    ("server-name", fleet({0: {"name": "MX_1"}}), f"{S}[0].name",
     "must be a DNS label: a-z, 0-9 and '-', 1-63 long"),
    ("server-name-hyphen", fleet({0: {"name": "mx1-"}}), f"{S}[0].name",
     "must be a DNS label: a-z, 0-9 and '-', 1-63 long"),
    ("server-name-duplicate", fleet({1: {"name": "mx1"}}), f"{S}[1].name",
     "'mx1' is used by another server"),
    ("server-provider", fleet({0: {"provider": "vultr"}}), f"{S}[0].provider",
     f"provider 'vultr' is not supported; one of: {PROVIDERS}"),
    ("server-size", fleet({0: {"size": "huge"}}), f"{S}[0].size",
     f"size 'huge' is not offered by hetzner; one of: {SIZES}"),
    ("server-region", fleet({0: {"region": "mars"}}), f"{S}[0].region",
     f"region 'mars' is not offered by hetzner; one of: {REGIONS}"),
    ("server-hostname", fleet({0: {"hostname": "mx1"}}), f"{S}[0].hostname",
     "'mx1' is not a fully qualified name"),
    ("server-hostname-duplicate", fleet({2: {"hostname": "own.mail.example.net"}}),
     f"{S}[2].hostname", "'own.mail.example.net' is used by another server"),
    ("existing-ip-missing", fleet({1: {"ip": None}}), f"{S}[1].ip",
     "an existing server needs its IP address"),
    ("existing-ip-invalid", fleet({1: {"ip": "198.51.100.300"}}), f"{S}[1].ip",
     "an existing server needs its IP address"),
    ("existing-ssh-user", fleet({1: {"ssh_user": "1admin"}}), f"{S}[1].sshUser",
     "is not a valid user name"),
    ("existing-ssh-user-long", fleet({1: {"ssh_user": "a" * 33}}), f"{S}[1].sshUser",
     "is not a valid user name"),
    ("ordered-server-ip", fleet({2: {"ip": "203.0.113.9"}}), f"{S}[2].ip",
     "only existing servers take an ip (hostwinds assigns one)"),
    ("ssh-port-zero", fleet({1: {"ssh_port": 0}}), f"{S}[1].sshPort",
     "must be between 1 and 65535"),
    ("ssh-port-high", fleet({0: {"ssh_port": 65536}}), f"{S}[0].sshPort",
     "must be between 1 and 65535"),
    ("ssh-public-key-missing", fleet(ssh_public_key=None), f"{NS}:sshPublicKey",
     "an OpenSSH public key is required"),
    ("ssh-public-key-garbage", fleet(ssh_public_key="AAAAC3Nza"), f"{NS}:sshPublicKey",
     "an OpenSSH public key is required"),
    ("ssh-private-key-missing", fleet(ssh_private_key=None), f"{NS}:sshPrivateKey",
     "a PEM/OpenSSH private key is required"),
    ("ssh-private-key-garbage", fleet(ssh_private_key="secret"), f"{NS}:sshPrivateKey",
     "a PEM/OpenSSH private key is required"),
    ("admin-password-missing", fleet(stalwart_admin_password=None),
     f"{NS}:stalwartAdminPassword", "is required (at least 12 characters)"),
    ("admin-password-short", fleet(stalwart_admin_password="x" * 11),
     f"{NS}:stalwartAdminPassword", "is required (at least 12 characters)"),
    ("hetzner-token", fleet(hetzner_token=""), f"{NS}:hetznerToken",
     "is required for Hetzner servers"),
    ("hostwinds-api-key", fleet(hostwinds_api_key=None), f"{NS}:hostwindsApiKey",
     "is required for Hostwinds servers"),
    ("domain-name", fleet(domains={0: {"name": "example"}}), f"{D}[0].name",
     "'example' is not a domain name"),
    ("domain-name-duplicate", fleet(domains={1: {"name": "example.com"}}), f"{D}[1].name",
     "'example.com' is listed twice"),
    ("dkim-selector", fleet(domains={0: {"dkim_selector": "pm_1"}}), f"{D}[0].dkimSelector",
     "must be a DNS label"),
    ("dkim-algorithm", fleet(domains={0: {"dkim_algorithm": "RSA"}}), f"{D}[0].dkimAlgorithm",
     "must be rsa or ed25519"),
    ("dkim-public-key", fleet(domains={0: {"dkim_public_key": "MIIB-AQAB"}}),
     f"{D}[0].dkimPublicKey", "must be the base64 public key (p= value)"),
    ("dkim-private-key", fleet(domains={0: {"dkim_private_key": "garbage"}}),
     f'{NS}:dkimPrivateKeys["example.com"]', "must be a PEM private key"),
    ("mailbox-address", fleet(mailboxes={0: {"address": "sales.example.com"}}),
     f"{M}[0].address", "'sales.example.com' is not an email address"),
    ("mailbox-address-local", fleet(mailboxes={0: {"address": "a b@example.com"}}),
     f"{M}[0].address", "'a b@example.com' is not an email address"),
    ("mailbox-address-duplicate", fleet(mailboxes={1: {"address": "sales@example.com"}}),
     f"{M}[1].address", "'sales@example.com' is listed twice"),
    ("mailbox-domain", fleet(mailboxes={0: {"address": "sales@example.org"}}),
     f"{M}[0].address", f"domain 'example.org' is not in {NS}:domains"),
    ("mailbox-server", fleet(mailboxes={1: {"server": "mx2"}}), f"{M}[1].server",
     f"no server named 'mx2' in {NS}:servers"),
    ("mailbox-quota-zero", fleet(mailboxes={0: {"quota_mb": 0}}), f"{M}[0].quotaMb",
     "must be between 1 and 10000000"),
    ("mailbox-quota-high", fleet(mailboxes={0: {"quota_mb": 10_000_001}}), f"{M}[0].quotaMb",
     "must be between 1 and 10000000"),
    ("mailbox-password", fleet(mailboxes={1: {"password": "x" * 7}}),
     f'{NS}:mailboxPasswords["ops@example.com"]', "at least 8 characters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "key", "reason"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS]
)
def test_each_check_names_its_key_and_says_why(build: Build, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    assert (err.value.key, err.value.reason) == (key, reason)
    assert str(err.value) == f"{key}: {reason}"


def test_catalog_that_cannot_be_merged_names_the_catalog() -> None:
    with pytest.raises(ConfigError) as err:
        fleet(catalog_overrides=[1])()
    assert err.value.key == f"{NS}:catalog"
    assert err.value.reason.startswith("cannot be merged: ")


def test_catalog_that_merges_into_nonsense_names_the_catalog() -> None:
    with pytest.raises(ConfigError) as err:
        fleet(catalog_overrides={"hetzner": {"regions": 5}})()
    assert err.value.key == f"{NS}:catalog"
    assert err.value.reason.startswith("override is malformed: ")


# Values at or just inside each limit: every one is accepted.
ACCEPTED: list[tuple[str, Build]] = [
    ("version-v0.12.0", fleet(stalwart_version="v0.12.0")),
    ("version-v0.15.123", fleet(stalwart_version="v0.15.123")),
    ("acme-email", fleet(acme_email="postmaster@example.com")),
    ("server-name-63", fleet({2: {"name": "h" * 63}})),
    ("server-name-digits", fleet({2: {"name": "1-2"}})),
    ("existing-ipv6", fleet({1: {"ip": "2001:db8::7"}})),
    ("existing-ssh-user-32", fleet({1: {"ssh_user": "_" + "a" * 31}})),
    ("ssh-port-1", fleet({1: {"ssh_port": 1}})),
    ("ssh-port-65535", fleet({0: {"ssh_port": 65535}})),
    ("ssh-public-key-ecdsa", fleet(ssh_public_key="ecdsa-sha2-nistp256 AAAA")),
    ("ssh-private-key-openssh", fleet(ssh_private_key="-----BEGIN OPENSSH PRIVATE KEY-----")),
    ("admin-password-12", fleet(stalwart_admin_password="x" * 12)),
    ("no-hetzner-token-without-hetzner", fleet({0: {"provider": "existing", "ip": "192.0.2.1"}},
                                               hetzner_token=None)),
    ("no-hostwinds-key-without-hostwinds",
     fleet({2: {"provider": "existing", "ip": "192.0.2.2", "region": "us-west"}},
           hostwinds_api_key=None)),
    ("dkim-ed25519", fleet(domains={0: {"dkim_algorithm": "ed25519"}})),
    ("dkim-public-key-wrapped", fleet(domains={0: {"dkim_public_key": "MIIB\nAQAB=="}})),
    ("mailbox-on-second-domain", fleet(domains={1: {}}, mailboxes={1: {
        "address": "ops@extra1.example.org"}})),
    ("mailbox-quota-1", fleet(mailboxes={0: {"quota_mb": 1}})),
    ("mailbox-quota-max", fleet(mailboxes={0: {"quota_mb": 10_000_000}})),
    ("mailbox-password-8", fleet(mailboxes={0: {"password": "x" * 8}})),
]  # fmt: skip


@pytest.mark.parametrize("build", [a[1] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_values_at_the_limits_are_accepted(build: Build) -> None:
    assert isinstance(build(), FleetConfig)


def test_a_fleet_without_servers_needs_no_credentials() -> None:
    config = fleet_config(
        stalwart_admin_password=None, ssh_public_key=None, ssh_private_key=None,
        hetzner_token=None, hostwinds_api_key=None,
    )  # fmt: skip
    assert config.servers == ()


# Two faults in one config: the first one in check order is the one reported.
FIRST_FAULT: list[tuple[str, Build, str, str | None]] = [
    ("workspace-before-tenant", fleet(workspace_id="", tenant_id=""), f"{NS}:workspaceId",
     "is required"),
    ("tenant-before-version", fleet(tenant_id="", stalwart_version="latest"), f"{NS}:tenantId",
     "is required"),
    ("version-before-acme", fleet(stalwart_version="latest", acme_email="x"),
     f"{NS}:stalwartVersion", f"'latest' {VERSION_PIN}"),
    ("acme-before-catalog", fleet(acme_email="x", catalog_overrides=[1]), f"{NS}:acmeEmail",
     "is not an email address"),
    ("catalog-before-servers", fleet({0: {"name": "MX_1"}}, catalog_overrides=[1]),
     f"{NS}:catalog", None),
    ("server-name-before-provider", fleet({0: {"name": "MX_1", "provider": "vultr"}}),
     f"{S}[0].name", "must be a DNS label: a-z, 0-9 and '-', 1-63 long"),
    ("duplicate-name-before-provider", fleet({1: {"name": "mx1", "provider": "vultr"}}),
     f"{S}[1].name", "'mx1' is used by another server"),
    ("provider-before-hostname", fleet({0: {"provider": "vultr", "hostname": "x"}}),
     f"{S}[0].provider", f"provider 'vultr' is not supported; one of: {PROVIDERS}"),
    ("region-before-size", fleet({0: {"region": "mars", "size": "huge"}}), f"{S}[0].region",
     f"region 'mars' is not offered by hetzner; one of: {REGIONS}"),
    ("hostname-before-ip", fleet({1: {"hostname": "x", "ip": None}}), f"{S}[1].hostname",
     "'x' is not a fully qualified name"),
    ("duplicate-hostname-before-ip", fleet({1: {"hostname": "mx1.mail.example.net",
                                                "ip": None}}),
     f"{S}[1].hostname", "'mx1.mail.example.net' is used by another server"),
    ("ip-before-ssh-user", fleet({1: {"ip": "x", "ssh_user": "X"}}), f"{S}[1].ip",
     "an existing server needs its IP address"),
    ("ssh-user-before-port", fleet({1: {"ssh_user": "X", "ssh_port": 0}}), f"{S}[1].sshUser",
     "is not a valid user name"),
    ("ordered-ip-before-port", fleet({0: {"ip": "192.0.2.1", "ssh_port": 0}}), f"{S}[0].ip",
     "only existing servers take an ip (hetzner assigns one)"),
    ("first-server-before-second", fleet({0: {"ssh_port": 0}, 1: {"name": "MX"}}),
     f"{S}[0].sshPort", "must be between 1 and 65535"),
    ("servers-before-credentials", fleet({2: {"ssh_port": 0}}, ssh_public_key=None),
     f"{S}[2].sshPort", "must be between 1 and 65535"),
    ("public-before-private-key", fleet(ssh_public_key=None, ssh_private_key=None),
     f"{NS}:sshPublicKey", "an OpenSSH public key is required"),
    ("private-key-before-password", fleet(ssh_private_key=None, stalwart_admin_password=None),
     f"{NS}:sshPrivateKey", "a PEM/OpenSSH private key is required"),
    ("password-before-hetzner", fleet(stalwart_admin_password=None, hetzner_token=None),
     f"{NS}:stalwartAdminPassword", "is required (at least 12 characters)"),
    ("hetzner-before-hostwinds", fleet(hetzner_token=None, hostwinds_api_key=None),
     f"{NS}:hetznerToken", "is required for Hetzner servers"),
    ("credentials-before-domains", fleet(domains={0: {"name": "x"}}, hostwinds_api_key=None),
     f"{NS}:hostwindsApiKey", "is required for Hostwinds servers"),
    ("duplicate-domain-before-selector", fleet(domains={1: {"name": "example.com",
                                                            "dkim_selector": "_"}}),
     f"{D}[1].name", "'example.com' is listed twice"),
    ("first-domain-before-second", fleet(domains={0: {"dkim_algorithm": "dsa"},
                                                  1: {"name": "x"}}),
     f"{D}[0].dkimAlgorithm", "must be rsa or ed25519"),
    ("selector-before-algorithm", fleet(domains={0: {"dkim_selector": "_",
                                                     "dkim_algorithm": "dsa"}}),
     f"{D}[0].dkimSelector", "must be a DNS label"),
    ("algorithm-before-public-key", fleet(domains={0: {"dkim_algorithm": "dsa",
                                                       "dkim_public_key": "!"}}),
     f"{D}[0].dkimAlgorithm", "must be rsa or ed25519"),
    ("public-before-private-dkim-key", fleet(domains={0: {"dkim_public_key": "!",
                                                          "dkim_private_key": "x"}}),
     f"{D}[0].dkimPublicKey", "must be the base64 public key (p= value)"),
    ("domains-before-mailboxes", fleet(domains={0: {"dkim_private_key": "x"}},
                                       mailboxes={0: {"quota_mb": 0}}),
     f'{NS}:dkimPrivateKeys["example.com"]', "must be a PEM private key"),
    ("address-before-server", fleet(mailboxes={0: {"address": "sales@x.org", "server": "x"}}),
     f"{M}[0].address", f"domain 'x.org' is not in {NS}:domains"),
    ("server-before-quota", fleet(mailboxes={0: {"server": "x", "quota_mb": 0}}),
     f"{M}[0].server", f"no server named 'x' in {NS}:servers"),
    ("quota-before-password", fleet(mailboxes={0: {"quota_mb": 0, "password": "x"}}),
     f"{M}[0].quotaMb", "must be between 1 and 10000000"),
    ("first-mailbox-before-second", fleet(mailboxes={0: {"password": "x"},
                                                     1: {"address": "x"}}),
     f'{NS}:mailboxPasswords["sales@example.com"]', "at least 8 characters"),
    ("duplicate-address-before-server", fleet(mailboxes={1: {"address": "sales@example.com",
                                                           "server": "x"}}),
     f"{M}[1].address", "'sales@example.com' is listed twice"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "key", "reason"), [f[1:] for f in FIRST_FAULT], ids=[f[0] for f in FIRST_FAULT]
)
def test_the_first_fault_in_check_order_is_reported(
    build: Build, key: str, reason: str | None
) -> None:
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.key == key
    if reason is not None:
        assert err.value.reason == reason
