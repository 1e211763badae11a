import uuid

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from domain.servers.model import VpsServer
from tests.factories import create_inbox, create_server, create_tenant, create_workspace


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
