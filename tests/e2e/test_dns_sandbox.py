"""Issue 5 end to end: a sandbox workspace provisioned through the HTTP API and the real queue
and sandbox engine; its records appear, are published on nsd as the user would, and one verify
makes the inbox ready."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from automation import queue
from database.session import session_scope
from tests.support.factories import create_tenant
from tests.support.fixtures import OverrideSettings
from tests.support.nsd import Nsd, running_nsd
from tests.support.published import publish_inbox
from tests.support.zones import unique_zone


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-e2e")) as server:
        yield server


@pytest.fixture
def app_client(
    committed: Engine, nsd: Nsd, override_settings: OverrideSettings
) -> Iterator[TestClient]:
    override_settings(dns_nameservers=nsd.nameservers)
    with TestClient(create_app()) as client:  # real sessions: the worker must see commits
        yield client


def test_provisioned_sandbox_inbox_verifies_against_published_zone(
    app_client: TestClient, nsd: Nsd
) -> None:
    with session_scope() as s:
        headers = create_tenant(s).headers
    ws = app_client.post(
        "/api/v1/workspaces", json={"name": "eu", "sandbox": True}, headers=headers
    ).json()["id"]
    # A .example zone: email validation refuses special-use names such as .test.
    domain = unique_zone("e2e").replace(".test", ".example")
    inbox = app_client.post(
        f"/api/v1/workspaces/{ws}/inboxes",
        headers=headers,
        json={"email_address": f"sales@{domain}", "vps_provider": "hetzner", "vps_size": "starter"},
    )
    assert inbox.status_code == 202, inbox.text
    inbox = inbox.json()
    url = f"/api/v1/inboxes/{inbox['id']}/dns-records"
    assert app_client.get(url, headers=headers).json()["records"] == []

    with session_scope() as s:  # skip the coalescing window; the worker runs it now
        s.execute(text("UPDATE operations SET run_after = now()"))
    assert queue.run_one("e2e-worker") is True
    op = app_client.get(f"/api/v1/operations/{inbox['operation_id']}", headers=headers).json()
    assert op["status"] == "succeeded", op["error"]

    records = app_client.get(url, headers=headers).json()
    server = app_client.get(f"/api/v1/vps/{inbox['vps_id']}", headers=headers).json()
    assert records["all_verified"] is False
    by_purpose = {r["purpose"]: r for r in records["records"]}
    assert by_purpose["a"]["value"] == server["ip_address"]
    assert by_purpose["ptr"]["value"].rstrip(".") == server["hostname"]
    assert server["ip_address"] in by_purpose["spf"]["value"]
    assert (
        app_client.get(f"/api/v1/inboxes/{inbox['id']}", headers=headers).json()["status"]
        == "dns_pending"
    )

    with session_scope() as s:
        publish_inbox(s, nsd, inbox["id"])
    verified = app_client.post(url + "/verify", headers=headers).json()
    assert verified["all_verified"] is True, [
        (r["purpose"], r["detail"]) for r in verified["records"]
    ]
    assert (
        app_client.get(f"/api/v1/inboxes/{inbox['id']}", headers=headers).json()["status"]
        == "ready"
    )
