"""One source of truth: the API accepts an inbox address or a server hostname iff the stack config
built from it validates (`stacks.config`), so no accepted request can poison its workspace.

The inputs are a table of edge cases plus labels drawn from a seeded generator (hypothesis is not
installed). The oracle builds the stack config the way a run would: the domain in its IDNA 2008
form (the `idna` package) when it is not ASCII, lower-cased, a new server named
`mail-<10 hex>.<domain>`; the API's one rule of its own is the 255-character address column.
Each accepted input is then built from the database (`build_fleet_config`) and must validate."""

import random
import uuid
from typing import Any

import idna
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from automation.desired_state import build_fleet_config
from database.models.workspaces import Workspace
from stacks.config import ConfigError, DomainSpec, FleetConfig, MailboxSpec, ServerSpec
from tests.support.factories import TenantWithKey, create_tenant, create_workspace

PEM = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
SSH_PUBLIC = "ssh-ed25519 AAAA test"
SSH_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"


def _stack_domain(domain: str) -> str | None:
    if domain.isascii():
        return domain.lower()
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


def _fleet(hostname: str, mailbox: tuple[str, str] | None = None) -> FleetConfig:
    """A one-server fleet (with one mailbox on it, if given); raises ConfigError when invalid."""
    domains, mailboxes = (), ()
    if mailbox is not None:
        address, domain = mailbox
        domains = (DomainSpec(domain, "pm202601", "QUJD", PEM),)
        mailboxes = (MailboxSpec(address, "srv-1", "a-long-password"),)
    return FleetConfig(
        workspace_id="ws",
        tenant_id="t",
        servers=(ServerSpec("srv-1", "hetzner", "starter", "eu-central", hostname),),
        domains=domains,
        mailboxes=mailboxes,
        stalwart_admin_password="an-admin-password",
        ssh_public_key=SSH_PUBLIC,
        ssh_private_key=SSH_PRIVATE,
        hetzner_token="token",
    )


def _stack_accepts_address(raw: str) -> bool:
    local, at, domain = raw.strip().rpartition("@")
    ascii_domain = _stack_domain(domain) if at else None
    if ascii_domain is None or len(f"{local}@{ascii_domain}") > 255:
        return False
    address = f"{local}@{ascii_domain}".lower()
    try:
        _fleet(f"mail-0123456789.{ascii_domain}", (address, ascii_domain))
    except ConfigError:
        return False
    return True


def _stack_accepts_hostname(raw: str) -> bool:
    name = _stack_domain(raw.strip())
    if name is None:
        return False
    try:
        _fleet(name)
    except ConfigError:
        return False
    return True


LABELS = [
    "example",
    "EXAMPLE",
    "bücher",
    "BÜCHER",
    "straße",
    "例え",
    "テスト",
    "😀",
    "-a",
    "a-",
    "ab--c",
    "xn--zz",
    "xn--bcher-kva",
    "a_b",
    "123",
    "c0m",
    "a" * 63,
    "a" * 64,
    "exa mple",
    "\uff21\uff22\uff23",  # fullwidth ABC: UTS #46 maps it to abc
    "é",
    "",
]
TLDS = ["com", "example", "de", "123", "テスト", "xn--zckzah", "c", "co-m"]


def _generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcXYZ019-_.üßé😀"
    out = []
    for _ in range(count):
        labels = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
            for _ in range(rng.randint(1, 3))
        ]
        out.append(".".join(labels))
    return out


DOMAINS = sorted(
    {f"{label}.{tld}" for label in LABELS for tld in ("example", "テスト")}
    | {f"mail.{tld}" for tld in TLDS}
    | {"localhost", "example.com.", ".".join(["a" * 59] * 4), ".".join(["a" * 58] * 4)}
    | {".".join(["a" * 63] * 3) + ".example"}
    | set(_generated(30, seed=11))
)
LOCALS = [
    "info",
    "Info",
    "a.b",
    "a+tag",
    "o'brien",
    "a..b",
    ".a",
    "bücher",
    "a b",
    "x" * 64,
    "x" * 65,
]
ADDRESSES = sorted(
    {f"{local}@example.com" for local in LOCALS}
    | {f"info@{domain}" for domain in DOMAINS}
    | {"info", "@example.com", "info@", "a@b@example.com"}
)
HOSTNAMES = sorted({f"mx.{domain}" for domain in DOMAINS} | {"MX1.Bücher.Example", "mx1"})


@pytest.fixture
def tenant(session: Session) -> TenantWithKey:
    return create_tenant(session)


def _post_inbox(client: TestClient, session: Session, tenant: TenantWithKey, address: str) -> Any:
    workspace = create_workspace(session, tenant)
    body = {"email_address": address, "vps_provider": "hetzner", "vps_size": "starter"}
    r = client.post(f"/api/v1/workspaces/{workspace.id}/inboxes", json=body, headers=tenant.headers)
    return r, workspace


def test_the_table_has_both_kinds_of_input() -> None:
    accepted = [a for a in ADDRESSES if _stack_accepts_address(a)]
    assert 20 < len(accepted) < len(ADDRESSES) - 20
    assert any(not a.isascii() for a in accepted)
    hosts = [h for h in HOSTNAMES if _stack_accepts_hostname(h)]
    assert 20 < len(hosts) < len(HOSTNAMES) - 20


@pytest.mark.parametrize("address", ADDRESSES)
def test_an_address_is_accepted_iff_the_stack_accepts_it(
    client: TestClient, session: Session, tenant: TenantWithKey, address: str
) -> None:
    r, workspace = _post_inbox(client, session, tenant, address)
    expected = _stack_accepts_address(address)
    assert r.status_code == (202 if expected else 422), r.text
    if expected:
        config = build_fleet_config(session, session.get_one(Workspace, workspace.id))
        assert len(config.mailboxes) == 1 and config.mailboxes[0].address.isascii()
    else:
        assert r.json()["error"]["field"] == "email_address", r.text


@pytest.mark.parametrize("hostname", HOSTNAMES)
def test_a_hostname_is_accepted_iff_the_stack_accepts_it(
    client: TestClient, session: Session, tenant: TenantWithKey, hostname: str
) -> None:
    workspace = create_workspace(session, tenant)
    body = {"provider": "hetzner", "size": "starter", "region": "eu-central", "hostname": hostname}
    r = client.post(f"/api/v1/workspaces/{workspace.id}/vps", json=body, headers=tenant.headers)
    expected = _stack_accepts_hostname(hostname)
    assert r.status_code == (202 if expected else 422), r.text
    if expected:
        config = build_fleet_config(session, session.get_one(Workspace, workspace.id))
        assert [s.hostname for s in config.servers] == [r.json()["hostname"]]
    else:
        assert r.json()["error"]["field"] == "hostname", r.text


DISPLAY_NAMES = [
    "Sales",
    "  Sales Team  ",
    "Bücher & Co",
    "例え",
    "😀 team",
    'O\'Brien "Ops"',
    "x" * 255,
    "x" * 256,
    "a\x00b",
    "a\tb",
    "a\nb",
    "a\x7fb",
    "a\x85b",
    "\u200b",
    "",
]


@pytest.mark.parametrize("name", DISPLAY_NAMES, ids=range(len(DISPLAY_NAMES)))
def test_a_display_name_is_refused_only_for_control_characters_or_length(
    client: TestClient, session: Session, tenant: TenantWithKey, name: str
) -> None:
    """The stack takes any string as a display name; the API refuses control characters (they
    reach Postgres and Stalwart) and more than 255 characters (the column). What it accepts,
    the stack config built from the database takes."""
    workspace = create_workspace(session, tenant)
    body = {
        "email_address": f"u{uuid.uuid4().hex[:6]}@acme.example",
        "display_name": name,
        "vps_provider": "hetzner",
        "vps_size": "starter",
    }
    r = client.post(f"/api/v1/workspaces/{workspace.id}/inboxes", json=body, headers=tenant.headers)
    refused = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name) or len(name.strip()) > 255
    assert r.status_code == (422 if refused else 202), r.text
    if refused:
        assert r.json()["error"]["field"] == "display_name"
    else:
        config = build_fleet_config(session, session.get_one(Workspace, workspace.id))
        assert config.mailboxes[0].display_name == name.strip()
