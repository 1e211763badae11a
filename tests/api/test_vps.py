import ipaddress
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.servers import VpsServer
from domain.servers.schemas import server_address_problem
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings


def test_provision_vps_and_read_it(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    r = client.post(
        f"/api/v1/workspaces/{ws.id}/vps",
        json={"provider": "hetzner", "size": "professional", "region": "eu-central"},
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "provisioning" and body["operation_id"] and body["engine"] == "sandbox"
    assert body["specs"]["cpu"] >= 2 and body["specs"]["region"] == "eu-central"
    got = client.get(f"/api/v1/vps/{body['id']}", headers=tenant.headers).json()
    assert got["hostname"] == body["hostname"] and got["mail_server_status"] == "not_configured"
    listed = client.get(f"/api/v1/workspaces/{ws.id}/vps", headers=tenant.headers).json()
    assert listed["total"] == 1


def test_bad_vps_input_is_422_naming_the_field(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    good = {"provider": "hetzner", "size": "starter", "region": "eu-central"}
    for payload, field in [
        ({**good, "provider": "aws"}, "provider"),
        ({**good, "size": "xl"}, "size"),
        ({**good, "region": "moon"}, "region"),
        ({**good, "provider": "existing"}, "ip_address"),
        ({**good, "ip_address": "203.0.113.9"}, "ip_address"),
        ({**good, "hostname": "not a host"}, "hostname"),
    ]:
        r = client.post(f"/api/v1/workspaces/{ws.id}/vps", json=payload, headers=tenant.headers)
        assert r.status_code == 422, (payload, r.text)
        assert r.json()["error"]["field"] == field, payload


def test_existing_server_is_registered_with_its_address(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    r = client.post(
        f"/api/v1/workspaces/{ws.id}/vps",
        json={
            "provider": "existing",
            "size": "starter",
            "region": "eu-central",
            "ip_address": "203.0.113.9",
            "hostname": "mx1.acme.example",
            "ssh_port": 2222,
        },
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    server = session.get_one(VpsServer, uuid.UUID(r.json()["id"]))
    assert str(server.ip_address) == "203.0.113.9" and server.ssh_port == 2222


def test_delete_vps_refused_while_inboxes_live_on_it(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    create_inbox(session, ws, server=server)
    r = client.delete(f"/api/v1/vps/{server.id}", headers=tenant.headers)
    assert r.status_code == 409
    empty = create_server(session, ws)
    r = client.delete(f"/api/v1/vps/{empty.id}", headers=tenant.headers)
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    stranger = create_tenant(session)
    assert client.get(f"/api/v1/vps/{server.id}", headers=stranger.headers).status_code == 404


# Addresses of `existing` servers: the control plane connects to them over SSH, so an address
# inside our own network or a cloud's metadata service is refused (422 naming ip_address).

EXISTING = {"provider": "existing", "size": "starter", "region": "eu-central"}


@pytest.fixture
def allow_private(override_settings: OverrideSettings) -> None:
    override_settings(allow_private_server_addresses=True)


def _post_existing(client: TestClient, session: Session, **fields: Any) -> Response:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    r: Response = client.post(
        f"/api/v1/workspaces/{ws.id}/vps", json={**EXISTING, **fields}, headers=tenant.headers
    )
    return r


def _assert_refused(r: Response, field: str, words: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field, error
    assert words in error["message"], error["message"]


NEVER = [
    ("127.0.0.1", "loopback"),
    ("127.10.0.1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("169.254.169.254", "cloud metadata"),  # AWS, GCP, Azure, DigitalOcean, Hetzner
    ("169.254.170.2", "cloud metadata"),  # AWS ECS
    ("100.100.100.200", "cloud metadata"),  # Alibaba, inside the CGNAT range
    ("168.63.129.16", "cloud metadata"),  # Azure wire server, a public address
    ("192.0.0.192", "cloud metadata"),  # Oracle Cloud Classic
    ("169.254.1.1", "link-local"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.0.8", "reserved"),
    ("198.18.0.1", "reserved"),
    # IPv6 is not accepted at all (the DNS plan publishes ip_address as the A record).
    ("fd00:ec2::254", "not a valid IPv4"),
    ("::1", "not a valid IPv4"),
    ("::ffff:127.0.0.1", "not a valid IPv4"),
    ("2606:4700::1111", "not a valid IPv4"),
]
PRIVATE = ["10.0.0.5", "10.255.255.254", "172.16.0.1", "172.31.255.254", "192.168.1.10"]
PRIVATE += ["100.64.0.1", "100.127.255.254"]
PUBLIC = ["203.0.113.9", "1.1.1.1", "95.217.12.34", "9.255.255.255", "11.0.0.1"]
PUBLIC += ["172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1", "100.63.255.255"]
PUBLIC += ["100.128.0.1", "169.253.255.255", "223.255.255.254", "198.20.0.1"]


@pytest.mark.parametrize(("address", "words"), NEVER)
def test_internal_and_metadata_addresses_are_refused(
    client: TestClient, session: Session, address: str, words: str
) -> None:
    _assert_refused(_post_existing(client, session, ip_address=address), "ip_address", words)


@pytest.mark.parametrize(("address", "words"), NEVER)
def test_internal_and_metadata_addresses_are_refused_on_private_networks_too(
    client: TestClient, session: Session, allow_private: None, address: str, words: str
) -> None:
    _assert_refused(_post_existing(client, session, ip_address=address), "ip_address", words)


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_refused_by_default(
    client: TestClient, session: Session, address: str
) -> None:
    r = _post_existing(client, session, ip_address=address)
    _assert_refused(r, "ip_address", "PENGUINMAILS_ALLOW_PRIVATE_SERVER_ADDRESSES")
    assert session.scalar(select(func.count()).select_from(VpsServer)) == 0


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_accepted_when_the_setting_allows_them(
    client: TestClient, session: Session, allow_private: None, address: str
) -> None:
    r = _post_existing(client, session, ip_address=address)
    assert r.status_code == 202, r.text
    assert r.json()["ip_address"] == address


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_accepted(client: TestClient, session: Session, address: str) -> None:
    r = _post_existing(client, session, ip_address=address)
    assert r.status_code == 202, r.text
    server = session.get_one(VpsServer, uuid.UUID(r.json()["id"]))
    assert str(server.ip_address) == address


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        # No integer (or boolean) is an address: 3232235777 would be 192.168.1.1.
        ({"ip_address": 123}, "ip_address", "valid string"),
        ({"ip_address": 3232235777}, "ip_address", "valid string"),
        ({"ip_address": True}, "ip_address", "valid string"),
        ({"ip_address": ["203.0.113.9"]}, "ip_address", "valid string"),
        ({"ip_address": "203.0.113"}, "ip_address", "not a valid IPv4"),
        ({"ip_address": "203.0.113.009"}, "ip_address", "not a valid IPv4"),
        ({"ip_address": " 203.0.113.9"}, "ip_address", "not a valid IPv4"),
        ({"ip_address": "203.0.113.9/32"}, "ip_address", "not a valid IPv4"),
        ({"ip_address": "mx1.acme.example"}, "ip_address", "not a valid IPv4"),
        # ssh_port: an integer 1..65535, never a boolean, float or string
        ({"ssh_port": True}, "ssh_port", "valid integer"),
        ({"ssh_port": "22"}, "ssh_port", "valid integer"),
        ({"ssh_port": 22.0}, "ssh_port", "valid integer"),
        ({"ssh_port": 0}, "ssh_port", "greater than or equal to 1"),
        ({"ssh_port": 65536}, "ssh_port", "less than or equal to 65535"),
        ({"ssh_port": None}, "ssh_port", "valid integer"),
        # ssh_user: a lower-case unix user name
        ({"ssh_user": 0}, "ssh_user", "valid string"),
        ({"ssh_user": "Root"}, "ssh_user", "pattern"),
        ({"ssh_user": "deploy user"}, "ssh_user", "pattern"),
        ({"ssh_user": "1deploy"}, "ssh_user", "pattern"),
        ({"ssh_user": "root;id"}, "ssh_user", "pattern"),
        ({"ssh_user": "-oProxyCommand"}, "ssh_user", "pattern"),
        ({"ssh_user": "u" * 33}, "ssh_user", "pattern"),
        ({"ssh_user": ""}, "ssh_user", "pattern"),
        # hostname: a fully qualified name
        ({"hostname": 123}, "hostname", "valid string"),
        ({"hostname": "localhost"}, "hostname", "pattern"),
        ({"hostname": "mx1..acme.example"}, "hostname", "pattern"),
        ({"hostname": "-mx1.acme.example"}, "hostname", "pattern"),
        ({"hostname": "mx1.acme.example."}, "hostname", "pattern"),
        ({"hostname": "mx_1.acme.example"}, "hostname", "pattern"),
        ({"hostname": "203.0.113.9"}, "hostname", "pattern"),
        ({"hostname": "a" * 64 + ".acme.example"}, "hostname", "pattern"),
        ({"hostname": ("a" * 62 + ".") * 4 + "example"}, "hostname", "at most 253"),
        # the catalog fields are strings too
        ({"provider": 1}, "provider", "valid string"),
        ({"size": True}, "size", "valid string"),
        ({"region": 7}, "region", "valid string"),
    ],
)
def test_fields_take_only_their_own_type(
    client: TestClient, session: Session, fields: dict[str, Any], field: str, words: str
) -> None:
    payload = {"ip_address": "203.0.113.9", **fields}
    _assert_refused(_post_existing(client, session, **payload), field, words)
    assert session.scalar(select(func.count()).select_from(VpsServer)) == 0


def test_valid_optional_fields_are_accepted(client: TestClient, session: Session) -> None:
    r = _post_existing(
        client,
        session,
        ip_address="198.51.100.7",
        hostname=" MX2.Acme.Example ",  # stripped and lower-cased
        ssh_user="deploy_2",
        ssh_port=65535,
    )
    assert r.status_code == 202, r.text
    server = session.get_one(VpsServer, uuid.UUID(r.json()["id"]))
    assert (server.hostname, server.ssh_user, server.ssh_port) == (
        "mx2.acme.example",
        "deploy_2",
        65535,
    )


@pytest.mark.parametrize(
    ("address", "allow_private", "words"),
    [
        ("fd00:ec2::254", True, "cloud metadata"),
        ("::ffff:169.254.169.254", True, "cloud metadata"),
        ("::ffff:10.0.0.1", False, "private"),
        ("::1", True, "loopback"),
        ("::", True, "unspecified"),
        ("fe80::1", True, "link-local"),
        ("ff02::1", True, "multicast"),
        ("fc00::1", False, "private"),
        ("fd12:3456::1", False, "private"),
        ("fd12:3456::1", True, None),
        ("2606:4700::1111", False, None),
    ],
)
def test_the_address_rules_cover_ipv6(address: str, allow_private: bool, words: str | None) -> None:
    """Not reachable through the API yet (it takes IPv4 only), ready for when it does."""
    problem = server_address_problem(ipaddress.ip_address(address), allow_private=allow_private)
    if words is None:
        assert problem is None
    else:
        assert problem is not None and words in problem


def test_a_second_server_with_a_hostname_the_workspace_uses_is_refused(
    client: TestClient, session: Session
) -> None:
    """The stack refuses two servers with one hostname, so accepting the second would fail
    every later run of the workspace; another workspace may use the name."""
    tenant = create_tenant(session)
    ws, other = create_workspace(session, tenant), create_workspace(session, tenant)
    payload = {"provider": "hetzner", "size": "starter", "region": "eu-central"}
    url = f"/api/v1/workspaces/{ws.id}/vps"
    first = client.post(
        url, json={**payload, "hostname": "mx1.example.com"}, headers=tenant.headers
    )
    assert first.status_code == 202, first.text
    again = client.post(
        url, json={**payload, "hostname": "MX1.example.com"}, headers=tenant.headers
    )
    assert again.status_code == 409 and again.json()["error"]["field"] == "hostname"
    assert client.get(url, headers=tenant.headers).json()["total"] == 1
    elsewhere = client.post(
        f"/api/v1/workspaces/{other.id}/vps",
        json={**payload, "hostname": "mx1.example.com"},
        headers=tenant.headers,
    )
    assert elsewhere.status_code == 202, elsewhere.text
