"""Operating a live workspace through the API: the SSH key an existing server must trust, the
preflight report (also on create), and destroying its stack."""

import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.factories import create_server, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings


@pytest.fixture
def live_env(tmp_path: Path, override_settings: OverrideSettings) -> Iterator[Path]:
    """A stub `pulumi` (it answers `version`), its home with the plugins, a file backend."""
    cli = tmp_path / "bin" / "pulumi"
    cli.parent.mkdir()
    cli.write_text('#!/bin/sh\n[ "$1" = version ] && echo v3.272.0\n')
    cli.chmod(cli.stat().st_mode | stat.S_IEXEC)
    home = tmp_path / "home"
    (home / "plugins" / "resource-hcloud-v1.0.0").mkdir(parents=True)
    override_settings(
        pulumi_command=str(cli),
        pulumi_home=str(home),
        pulumi_plugins="hcloud=v1.0.0,command=v1.2.1",
        pulumi_backend_url=(tmp_path / "state").as_uri(),
        hetzner_token=None,
    )
    yield tmp_path


def test_ssh_key_is_the_workspaces_public_key(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant, sandbox=False)
    r = client.get(f"/api/v1/workspaces/{ws.id}/ssh-key", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ssh_public_key"] == ws.ssh_public_key
    assert "PRIVATE" not in r.text
    if shutil.which("ssh-keygen"):  # the fingerprint is the one ssh-keygen -l shows
        out = subprocess.run(["ssh-keygen", "-lf", "-"], input=body["ssh_public_key"],
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert body["fingerprint"] in out.stdout
    other = create_tenant(session)
    assert (
        client.get(f"/api/v1/workspaces/{ws.id}/ssh-key", headers=other.headers).status_code == 404
    )


def test_preflight_reports_each_check_by_setting_name(
    client: TestClient, session: Session, live_env: Path
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant, sandbox=False)
    create_server(session, ws, provider="hetzner")
    r = client.get(f"/api/v1/workspaces/{ws.id}/preflight", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["pulumi_cli"]["ok"] and "v3.272.0" in checks["pulumi_cli"]["detail"]
    assert checks["plugin:hcloud"]["ok"]
    assert not checks["plugin:command"]["ok"]  # not fatal: the engine installs it
    assert checks["credential:hetzner"] == {
        "name": "credential:hetzner",
        "ok": False,
        "setting": "PENGUINMAILS_HETZNER_TOKEN",
        "detail": "PENGUINMAILS_HETZNER_TOKEN is not set (hetzner servers)",
    }
    assert "credential:hostwinds" not in checks  # no Hostwinds server
    assert checks["backend"]["ok"]
    assert body["ready"] is False and body["engine"] == "live"
    assert "PASSPHRASE" not in r.text


def test_preflight_without_the_cli_and_with_an_unreachable_backend(
    client: TestClient, session: Session, live_env: Path, override_settings: OverrideSettings
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    override_settings(
        pulumi_command="pulumi-not-here",
        pulumi_backend_url=f"postgres://u:hunter2@127.0.0.1:{port}/x",
    )
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant, sandbox=False)
    body = client.get(f"/api/v1/workspaces/{ws.id}/preflight", headers=tenant.headers).json()
    checks = {c["name"]: c for c in body["checks"]}
    assert not checks["pulumi_cli"]["ok"] and checks["pulumi_cli"]["setting"] == (
        "PENGUINMAILS_PULUMI_COMMAND"
    )
    assert not checks["backend"]["ok"] and "cannot connect" in checks["backend"]["detail"]
    assert "hunter2" not in str(body)


def test_creating_a_live_workspace_answers_with_the_report(
    client: TestClient, session: Session, live_env: Path
) -> None:
    tenant = create_tenant(session)
    live = client.post("/api/v1/workspaces", json={"name": "live", "sandbox": False},
                       headers=tenant.headers)  # fmt: skip
    assert live.status_code == 201, live.text
    report = live.json()["preflight"]
    assert {c["name"] for c in report["checks"]} >= {"pulumi_cli", "backend", "credential:hetzner"}
    assert report["ready"] is True  # no server yet: credentials are for information
    sandbox = client.post("/api/v1/workspaces", json={"name": "sb"}, headers=tenant.headers)
    assert sandbox.json()["preflight"] is None
    sb = client.get(f"/api/v1/workspaces/{sandbox.json()['id']}/preflight", headers=tenant.headers)
    assert sb.json() == {"engine": "sandbox", "ready": True, "checks": []}


def test_destroy_queues_a_destroy_operation(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    headers = {**tenant.headers, "Idempotency-Key": "destroy-1"}
    r = client.post(f"/api/v1/workspaces/{ws.id}/destroy", headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "destroy" and r.json()["status"] == "queued"
    again = client.post(f"/api/v1/workspaces/{ws.id}/destroy", headers=headers)
    assert again.json()["id"] == r.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = create_tenant(session)
    assert (
        client.post(f"/api/v1/workspaces/{ws.id}/destroy", headers=other.headers).status_code == 404
    )


def test_refresh_queues_a_refresh_operation(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    headers = {**tenant.headers, "Idempotency-Key": "refresh-1"}
    r = client.post(f"/api/v1/workspaces/{ws.id}/refresh", headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "refresh" and r.json()["status"] == "queued"
    again = client.post(f"/api/v1/workspaces/{ws.id}/refresh", headers=headers)
    assert again.json()["id"] == r.json()["id"]
    other = create_tenant(session)
    assert (
        client.post(f"/api/v1/workspaces/{ws.id}/refresh", headers=other.headers).status_code == 404
    )


def test_preflight_reports_worker_hosts_that_would_not_share_state(
    client: TestClient, session: Session, live_env: Path
) -> None:
    """Two worker hosts on one database, one keeping its Pulumi state on its own machine: the
    preflight says so (and names the setting) before any live run is refused for it."""
    from datetime import UTC, datetime

    from domain.hosts import service as hosts

    tenant = create_tenant(session)
    ws = create_workspace(session, tenant, sandbox=False)
    url = f"/api/v1/workspaces/{ws.id}/preflight"
    alone = {c["name"]: c for c in client.get(url, headers=tenant.headers).json()["checks"]}
    assert alone["shared_state"]["ok"] is True
    now = datetime.now(UTC)
    for host, local in (("host-a", True), ("host-b", False)):
        hosts.beat(session, host=host, pid=1, started_at=now, now=now,
                   pulumi_backend="file" if local else "postgres", backend_local=local)  # fmt: skip
    session.flush()
    checks = {c["name"]: c for c in client.get(url, headers=tenant.headers).json()["checks"]}
    shared = checks["shared_state"]
    assert shared["ok"] is False and shared["setting"] == "PENGUINMAILS_PULUMI_BACKEND_URL"
    assert "host-a" in shared["detail"]
