"""DNS connections, the workspace default, the domains resource and the publish status of each
record, over the API."""

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.operations import Operation
from domain.dns_records import service as dns_records
from settings import get_settings
from tests.support.factories import (
    TenantWithKey,
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def rfc2136(name: str = "knot", **kw: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "kind": "rfc2136",
        "server": "127.0.0.1:5300",
        "tsig_key_name": "pm-key.",
        "tsig_secret": SECRET,
    }
    body.update(kw)
    return body


def setup(session: Session) -> tuple[TenantWithKey, uuid.UUID]:
    tenant = create_tenant(session)
    return tenant, create_workspace(session, tenant).id


def connections(workspace_id: uuid.UUID) -> str:
    return f"/api/v1/workspaces/{workspace_id}/dns-connections"


def test_create_read_list_never_return_credentials(session: Session, client: TestClient) -> None:
    tenant, ws = setup(session)
    made = client.post(connections(ws), json=rfc2136(), headers=tenant.headers)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["kind"] == "rfc2136" and body["credentials"] == ["tsig_secret"]
    assert body["settings"] == {
        "server": "127.0.0.1:5300",
        "tsig_key_name": "pm-key.",
        "tsig_algorithm": "hmac-sha256",
    }
    assert SECRET not in made.text
    one = client.get(f"{connections(ws)}/{body['id']}", headers=tenant.headers)
    listed = client.get(connections(ws), headers=tenant.headers)
    assert one.status_code == 200 and SECRET not in one.text
    assert listed.json()["total"] == 1 and SECRET not in listed.text
    stored = session.execute(
        text("SELECT credentials_encrypted FROM dns_connections WHERE id = :id"), {"id": body["id"]}
    ).scalar_one()
    assert SECRET not in stored  # encrypted at rest


def test_bad_bodies_are_422_naming_the_field(session: Session, client: TestClient) -> None:
    tenant, ws = setup(session)
    cases = [
        (rfc2136(tsig_secret="not base64!"), "tsig_secret"),
        (rfc2136(server="host:99999"), "server"),
        (rfc2136(extra="x"), "extra"),
        ({"name": "x", "kind": "carrier-pigeon"}, "kind"),
        (
            {
                "name": "pdns",
                "kind": "lexicon",
                "provider": "powerdns",
                "options": {"auth_token": "t"},
            },
            "options.pdns_server",
        ),
        ({"name": "pdns", "kind": "lexicon", "provider": "no-such-dns"}, "provider"),
        (
            {
                "name": "pdns",
                "kind": "lexicon",
                "provider": "powerdns",
                "options": {"auth_token": "t", "pdns_server": "http://x", "colour": "red"},
            },
            "options.colour",
        ),
        ({"name": "cf", "kind": "cloudflare"}, "api_token"),
    ]
    for body, field in cases:
        answer = client.post(connections(ws), json=body, headers=tenant.headers)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert field in (error["field"] or "") or field in str(error["details"]), (field, error)


def test_create_is_idempotent(session: Session, client: TestClient) -> None:
    tenant, ws = setup(session)
    headers = {**tenant.headers, "Idempotency-Key": "dns-1"}
    first = client.post(connections(ws), json=rfc2136(), headers=headers)
    again = client.post(connections(ws), json=rfc2136(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert client.post(connections(ws), json=rfc2136(), headers=tenant.headers).status_code == 409


def test_patch_renames_and_rotates_and_refuses_other_kinds_fields(
    session: Session, client: TestClient
) -> None:
    tenant, ws = setup(session)
    cid = client.post(connections(ws), json=rfc2136(), headers=tenant.headers).json()["id"]
    url = f"{connections(ws)}/{cid}"
    renamed = client.patch(
        url, json={"name": "primary", "tsig_secret": "bmV3LXNlY3JldA=="}, headers=tenant.headers
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "primary"
    assert "bmV3" not in renamed.text
    wrong = client.patch(url, json={"api_token": "x"}, headers=tenant.headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "api_token"


def test_another_tenants_connection_is_404(session: Session, client: TestClient) -> None:
    tenant, ws = setup(session)
    other, _ = setup(session)
    cid = client.post(connections(ws), json=rfc2136(), headers=tenant.headers).json()["id"]
    assert client.get(f"{connections(ws)}/{cid}", headers=other.headers).status_code == 404
    assert client.get(connections(ws), headers=other.headers).status_code == 404


def test_default_override_domains_and_publish_status(session: Session, client: TestClient) -> None:
    tenant, ws_id = setup(session)
    from database.models.workspaces import Workspace

    workspace = session.get_one(Workspace, ws_id)
    server = create_server(session, workspace, hostname="mail.corp.example")
    create_mail_domain(session, workspace, "corp.example")
    inbox = create_inbox(session, workspace, email_address="a@corp.example", server=server)
    dns_records.generate_for_server(session, server, settings=get_settings())
    view = client.get(f"/api/v1/inboxes/{inbox.id}/dns-records", headers=tenant.headers).json()
    assert {r["publish"]["status"] for r in view["records"]} == {"manual"}

    cid = client.post(connections(ws_id), json=rfc2136(), headers=tenant.headers).json()["id"]
    patched = client.patch(
        f"/api/v1/workspaces/{ws_id}", json={"dns_connection_id": cid}, headers=tenant.headers
    )
    assert patched.status_code == 200 and patched.json()["dns_connection_id"] == cid
    view = client.get(f"/api/v1/inboxes/{inbox.id}/dns-records", headers=tenant.headers).json()
    assert {r["publish"]["status"] for r in view["records"]} == {"pending"}
    ups = session.scalars(select(Operation).where(Operation.workspace_id == ws_id)).all()
    assert [o.kind for o in ups] == ["up"]  # the run that publishes them

    domains = client.get(f"/api/v1/workspaces/{ws_id}/domains", headers=tenant.headers).json()
    (domain,) = domains
    assert domain["name"] == "corp.example" and domain["effective_connection_id"] == cid
    assert domain["dns_connection_id"] is None and domain["publish"]["status"] == "pending"
    assert domain["verification"]["all_verified"] is False

    # In use: the connection cannot go.
    gone = client.delete(f"{connections(ws_id)}/{cid}", headers=tenant.headers)
    assert gone.status_code == 409

    # Override: manual for this domain only (a connection of kind manual).
    manual = client.post(
        connections(ws_id), json={"name": "by-hand", "kind": "manual"}, headers=tenant.headers
    ).json()["id"]
    over = client.patch(
        f"/api/v1/domains/{domain['id']}",
        json={"dns_connection_id": manual, "mx_policy": "replace"},
        headers=tenant.headers,
    )
    assert over.status_code == 200, over.text
    assert over.json()["effective_connection_id"] == manual
    assert over.json()["mx_policy"] == "replace" and over.json()["publish"]["status"] == "manual"
    statuses = {r.publish_status for r in session.scalars(select(DnsRecord))}
    assert statuses == {"manual"}

    bad_zone = client.patch(
        f"/api/v1/domains/{domain['id']}",
        json={"zone": "elsewhere.example"},
        headers=tenant.headers,
    )
    assert bad_zone.status_code == 422 and bad_zone.json()["error"]["field"] == "zone"
    unknown = client.patch(
        f"/api/v1/workspaces/{ws_id}",
        json={"dns_connection_id": str(uuid.uuid4())},
        headers=tenant.headers,
    )
    assert unknown.status_code == 422


def test_another_tenants_domain_is_404(session: Session, client: TestClient) -> None:
    _, ws_id = setup(session)
    other, _ = setup(session)
    from database.models.workspaces import Workspace

    domain = create_mail_domain(session, session.get_one(Workspace, ws_id), "mine.example")
    answer = client.patch(
        f"/api/v1/domains/{domain.id}", json={"mx_policy": "replace"}, headers=other.headers
    )
    assert answer.status_code == 404
    assert (
        client.get(f"/api/v1/workspaces/{ws_id}/domains", headers=other.headers).status_code == 404
    )


def test_a_workspace_with_a_default_connection_can_be_deleted(
    session: Session, client: TestClient
) -> None:
    tenant, ws = setup(session)
    cid = client.post(connections(ws), json=rfc2136(), headers=tenant.headers).json()["id"]
    client.patch(
        f"/api/v1/workspaces/{ws}", json={"dns_connection_id": cid}, headers=tenant.headers
    )
    assert client.delete(f"/api/v1/workspaces/{ws}", headers=tenant.headers).status_code == 204
    assert client.get(f"/api/v1/workspaces/{ws}", headers=tenant.headers).status_code == 404
    left = session.execute(text("SELECT count(*) FROM dns_connections WHERE id = :id"), {"id": cid})
    assert left.scalar_one() == 0


def test_a_key_name_that_is_not_a_dns_name_is_refused(session: Session, client: TestClient) -> None:
    tenant, ws = setup(session)
    answer = client.post(
        connections(ws), json=rfc2136(tsig_key_name="a..b"), headers=tenant.headers
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "tsig_key_name"
