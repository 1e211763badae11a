"""Health history, mail-server restart and logs over the API. Restart and logs go over real SSH
(an asyncssh server on loopback that trusts the workspace's key) for live workspaces, and act on a
simulated server for sandbox ones."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import HealthCheckResult
from database.models.servers import VpsServer
from domain.health import service
from domain.health.service import ServerInfo
from kit.time import utcnow
from probes.types import Check, CheckResult, Status
from tests.support.factories import TenantWithKey, create_server, create_tenant, create_workspace
from tests.support.loopback import Lab, Responder
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    yield lab
    lab.close()


def _live_server(
    session: Session, lab: Lab, responder: Responder, **kw: object
) -> tuple[TenantWithKey, VpsServer]:
    tenant = create_tenant(session)
    workspace = create_workspace(session, tenant, sandbox=False)
    assert workspace.ssh_public_key
    _, port = lab.ssh(workspace.ssh_public_key, responder)
    server = create_server(session, workspace, ip_address="127.0.0.1", **kw)  # type: ignore[arg-type]
    server.ssh_port = port
    session.flush()
    return tenant, server


def _commands_after(lab: Lab, before: int) -> list[str]:
    return lab.ssh_commands[before:]


# --- history ------------------------------------------------------------------------------


def test_health_history_since_and_by_check(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    server = create_server(session, create_workspace(session, tenant, sandbox=False))
    info = ServerInfo(server.id, server.tenant_id, server.workspace_id, server.name, "h")
    now = utcnow()
    for hours_ago, status in ((30, Status.CRITICAL), (2, Status.OK)):
        service.apply_results(
            session,
            [(info, [CheckResult(Check.DISK, status, f"{hours_ago}h", 50.0)])],
            now - timedelta(hours=hours_ago),
        )
    service.apply_results(
        session, [(info, [CheckResult(Check.REACHABLE, Status.OK, "now", 1.0)])], now
    )
    url = f"/api/v1/vps/{server.id}/health"
    body = client.get(url, headers=tenant.headers).json()
    assert body["total"] == 3 and body["simulated"] is False
    assert [i["detail"] for i in body["items"]] == ["now", "2h", "30h"]
    since = (now - timedelta(hours=3)).isoformat()
    body = client.get(url, params={"since": since}, headers=tenant.headers).json()
    assert [i["detail"] for i in body["items"]] == ["now", "2h"]
    body = client.get(url, params={"check": "disk"}, headers=tenant.headers).json()
    assert [(i["check"], i["status"]) for i in body["items"]] == [
        ("disk", "ok"),
        ("disk", "critical"),
    ]
    bad = client.get(url, params={"check": "vibes"}, headers=tenant.headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "check"
    other = create_tenant(session)
    assert client.get(url, headers=other.headers).status_code == 404


# --- restart ------------------------------------------------------------------------------


def test_restart_runs_systemctl_over_ssh_and_records_the_outcome(
    client: TestClient, session: Session, lab: Lab
) -> None:
    tenant, server = _live_server(session, lab, lambda cmd: ("", 0))
    before = len(lab.ssh_commands)
    r = client.post(f"/api/v1/vps/{server.id}/mail-server/restart", headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["outcome"], body["simulated"]) == ("restarted", False)
    assert _commands_after(lab, before) == ["systemctl restart stalwart"]
    event = session.get(Event, body["event_id"])
    assert event is not None and event.type == "mail_server.restarted"
    assert event.subject_id == server.id


def test_restart_as_a_non_root_user_goes_through_sudo(
    client: TestClient, session: Session, lab: Lab
) -> None:
    tenant, server = _live_server(session, lab, lambda cmd: ("", 0))
    server.ssh_user = "deploy"
    session.flush()
    before = len(lab.ssh_commands)
    r = client.post(f"/api/v1/vps/{server.id}/mail-server/restart", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert _commands_after(lab, before) == ["sudo -n systemctl restart stalwart"]


def test_a_failed_restart_is_502_and_still_recorded(
    client: TestClient, session: Session, lab: Lab
) -> None:
    def responder(cmd: str) -> tuple[str, int]:
        return "Job for stalwart.service failed because the control process exited", 1

    tenant, server = _live_server(session, lab, responder)
    r = client.post(f"/api/v1/vps/{server.id}/mail-server/restart", headers=tenant.headers)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "mail_server_restart_failed"
    assert "exited 1" in error["message"] and "control process" in error["message"]
    event_id = error["details"][0]["event_id"]
    event = session.get(Event, event_id)
    assert event is not None and event.type == "mail_server.restart_failed"


def test_restart_over_unreachable_ssh_is_502_and_recorded(
    client: TestClient, session: Session, lab: Lab
) -> None:
    tenant, server = _live_server(session, lab, lambda cmd: ("", 0))
    server.ssh_port = free_port()
    session.flush()
    r = client.post(f"/api/v1/vps/{server.id}/mail-server/restart", headers=tenant.headers)
    assert r.status_code == 502
    assert "connection refused" in r.json()["error"]["message"].lower()
    kinds = session.scalars(select(Event.type).where(Event.subject_id == server.id)).all()
    assert kinds == ["mail_server.restart_failed"]


def test_restart_is_409_while_provisioning_and_404_for_another_tenant(
    client: TestClient, session: Session, lab: Lab
) -> None:
    tenant, server = _live_server(session, lab, lambda cmd: ("", 0), status="provisioning")
    before = len(lab.ssh_commands)
    url = f"/api/v1/vps/{server.id}/mail-server/restart"
    r = client.post(url, headers=tenant.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert client.post(url, headers=create_tenant(session).headers).status_code == 404
    assert _commands_after(lab, before) == []


def test_restart_in_a_sandbox_is_simulated(client: TestClient, session: Session, lab: Lab) -> None:
    tenant = create_tenant(session)
    server = create_server(session, create_workspace(session, tenant, sandbox=True))
    before = len(lab.ssh_commands)
    r = client.post(f"/api/v1/vps/{server.id}/mail-server/restart", headers=tenant.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["simulated"] is True and "simulated" in body["detail"]
    assert _commands_after(lab, before) == []


# --- logs ---------------------------------------------------------------------------------


def _journal(cmd: str) -> tuple[str, int]:
    if cmd.startswith("journalctl "):
        n = int(cmd.split(" -n ")[1].split(" ")[0])
        return "".join(f"2026-01-01T00:00:00+0000 mx stalwart[1]: line {i}\n" for i in range(n)), 0
    return "", 127


def test_logs_read_the_journal_over_ssh(client: TestClient, session: Session, lab: Lab) -> None:
    tenant, server = _live_server(session, lab, _journal)
    before = len(lab.ssh_commands)
    r = client.get(f"/api/v1/vps/{server.id}/logs", params={"lines": 7}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["simulated"] is False and body["requested"] == 7
    assert [line.rsplit(" ", 1)[1] for line in body["lines"]] == [str(i) for i in range(7)]
    assert _commands_after(lab, before) == ["journalctl -u stalwart -n 7 --no-pager -o short-iso"]
    default = client.get(f"/api/v1/vps/{server.id}/logs", headers=tenant.headers).json()
    assert len(default["lines"]) == 100


@pytest.mark.parametrize("lines", ["0", "1001", "-5", "10; reboot", "$(reboot)", "1e3"])
def test_logs_lines_out_of_range_or_not_a_number_is_422_and_never_reaches_ssh(
    client: TestClient, session: Session, lab: Lab, lines: str
) -> None:
    tenant, server = _live_server(session, lab, _journal)
    before = len(lab.ssh_commands)
    r = client.get(f"/api/v1/vps/{server.id}/logs", params={"lines": lines}, headers=tenant.headers)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "lines"
    assert _commands_after(lab, before) == []


def test_logs_when_ssh_is_down_is_503(client: TestClient, session: Session, lab: Lab) -> None:
    tenant, server = _live_server(session, lab, _journal)
    server.ssh_port = free_port()
    session.flush()
    r = client.get(f"/api/v1/vps/{server.id}/logs", headers=tenant.headers)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "unavailable"


def test_logs_in_a_sandbox_are_simulated(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    server = create_server(session, create_workspace(session, tenant, sandbox=True))
    body = client.get(
        f"/api/v1/vps/{server.id}/logs", params={"lines": 3}, headers=tenant.headers
    ).json()
    assert body["simulated"] is True and len(body["lines"]) == 3
    assert body["source"].startswith("simulated")


# --- host keys ----------------------------------------------------------------------------


def test_host_key_is_pinned_on_first_contact_and_a_changed_key_is_refused(
    client: TestClient, session: Session, lab: Lab
) -> None:
    tenant, server = _live_server(session, lab, lambda cmd: ("", 0))
    url = f"/api/v1/vps/{server.id}/mail-server/restart"
    assert server.ssh_host_key is None
    assert client.post(url, headers=tenant.headers).status_code == 200
    session.refresh(server)
    pinned = server.ssh_host_key
    assert pinned and pinned.startswith("ssh-ed25519 ")
    before = len(lab.ssh_commands)
    assert client.post(url, headers=tenant.headers).status_code == 200  # same key: trusted
    assert len(lab.ssh_commands) == before + 1

    # The address now answers with another server (rebuilt, or a man in the middle).
    _, other_port = lab.ssh(_workspace_key(session, server), lambda cmd: ("", 0))
    server.ssh_port = other_port
    session.flush()
    before = len(lab.ssh_commands)
    refused = client.post(url, headers=tenant.headers)
    assert refused.status_code == 502
    assert "host key changed" in refused.json()["error"]["message"]
    assert len(lab.ssh_commands) == before  # no command reached the impostor
    session.refresh(server)
    assert server.ssh_host_key == pinned


def _workspace_key(session: Session, server: VpsServer) -> str:
    from database.models.workspaces import Workspace

    key = session.get_one(Workspace, server.workspace_id).ssh_public_key
    assert key
    return key


def test_the_sweep_pins_the_first_host_key_it_sees(session: Session) -> None:
    from probes.types import SEEN_HOST_KEY

    server = create_server(session, create_workspace(session, create_tenant(session)))
    info = ServerInfo(server.id, server.tenant_id, server.workspace_id, server.name, "h")
    for key in ("ssh-ed25519 AAAAfirst", "ssh-ed25519 AAAAsecond"):
        seen = CheckResult(Check.DISK, Status.OK, "ok", 50.0, data={SEEN_HOST_KEY: key})
        service.apply_results(session, [(info, [seen])], utcnow())
    session.refresh(server)
    assert server.ssh_host_key == "ssh-ed25519 AAAAfirst"
    stored = session.scalars(select(HealthCheckResult.data)).all()
    assert all(SEEN_HOST_KEY not in d for d in stored)
