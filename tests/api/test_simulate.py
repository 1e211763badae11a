"""POST /vps/{id}/simulate: a sandbox server's check made to fail and recover, seen through the
real monitoring.health sweep (history, state, one alert, one recovery), never on a live server."""

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from api.app import create_app
from database.models.events import Event
from database.models.servers import VpsServer
from database.session import session_scope
from scheduler.jobs import monitoring_health
from settings import get_settings
from tests.support.factories import TenantWithKey, create_server, create_tenant, create_workspace


@pytest.fixture
def api(committed: Engine) -> Iterator[TestClient]:
    with TestClient(create_app()) as client:
        yield client


def _fleet() -> tuple[TenantWithKey, uuid.UUID, uuid.UUID]:
    with session_scope() as s:
        tenant = create_tenant(s)
        sandbox = create_server(
            s, create_workspace(s, tenant, sandbox=True), ip_address="192.0.2.5"
        )
        live = create_server(s, create_workspace(s, tenant, sandbox=False), ip_address="192.0.2.6")
        return tenant, sandbox.id, live.id


def _events(kind: str, vps_id: uuid.UUID) -> list[Event]:
    with session_scope() as s:
        return list(s.scalars(select(Event).where(Event.type == kind, Event.subject_id == vps_id)))


def test_a_simulated_failure_alerts_once_and_its_end_recovers(api: TestClient) -> None:
    tenant, vps_id, _ = _fleet()
    url = f"/api/v1/vps/{vps_id}/simulate"
    r = api.post(url, json={"check": "tls", "status": "critical", "detail": "expired (drill)"},
                 headers=tenant.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"tls": {"status": "critical", "detail": "expired (drill)"}}
    for _ in range(2):
        monitoring_health.run(get_settings())
    alerts = _events("health.alert", vps_id)
    assert len(alerts) == 1 and "expired (drill)" in alerts[0].message
    history = api.get(f"/api/v1/vps/{vps_id}/health?check=tls", headers=tenant.headers).json()
    assert history["simulated"] is True
    assert [i["status"] for i in history["items"]] == ["critical", "critical"]

    assert (
        api.post(url, json={"check": "tls", "status": "ok"}, headers=tenant.headers).json()[
            "checks"
        ]
        == {}
    )
    monitoring_health.run(get_settings())
    assert len(_events("health.recovered", vps_id)) == 1
    assert len(_events("health.alert", vps_id)) == 1
    with session_scope() as s:
        assert s.get_one(VpsServer, vps_id).simulated_health is None


def test_only_sandbox_servers_of_the_callers_tenant_can_be_simulated(api: TestClient) -> None:
    tenant, vps_id, live_id = _fleet()
    body = {"check": "mail_server", "status": "critical"}
    live = api.post(f"/api/v1/vps/{live_id}/simulate", json=body, headers=tenant.headers)
    assert live.status_code == 409 and live.json()["error"]["field"] == "vps_id"
    with session_scope() as s:
        other = create_tenant(s)
    stranger = api.post(f"/api/v1/vps/{vps_id}/simulate", json=body, headers=other.headers)
    assert stranger.status_code == 404
    bad = api.post(f"/api/v1/vps/{vps_id}/simulate", json={"check": "smtp", "status": "critical"},
                   headers=tenant.headers)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "check"
    assert api.get(f"/api/v1/vps/{vps_id}/simulate", headers=tenant.headers).json()["checks"] == {}
