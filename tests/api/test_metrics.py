"""`/metrics`: off without a token, refused with a wrong one, and the Prometheus text with the
database's counts and the process's own timings."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from database.models.operations import Operation
from domain.metrics import service
from kit.metrics import batch_size
from kit.time import utcnow
from tests.support import factories
from tests.support.fixtures import OverrideSettings


@pytest.fixture
def with_token(override_settings: OverrideSettings, client: TestClient) -> TestClient:
    override_settings(metrics_token="s3cret")
    return client


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_a_wrong_token_is_refused(with_token: TestClient) -> None:
    assert with_token.get("/metrics").status_code == 401
    wrong = with_token.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "s3cret" not in wrong.text


def test_the_scrape_has_every_family(with_token: TestClient, session: Session) -> None:
    tenant = factories.create_tenant(session)
    workspace = factories.create_workspace(session, tenant.tenant)
    server = factories.create_server(session, workspace)
    factories.create_inbox(session, workspace, server=server)
    now = utcnow()
    session.add(
        Operation(
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            kind="up",
            status="succeeded",
            started_at=now - timedelta(seconds=12),
            finished_at=now,
        )
    )
    session.add(
        Operation(
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            kind="preview",
            status="queued",
            run_after=now - timedelta(seconds=30),
        )
    )
    session.flush()
    auth = {"Authorization": f"Bearer {tenant.api_key}"}
    with_token.get("/api/v1/workspaces", headers=auth)
    with_token.get(f"/api/v1/inboxes/{workspace.id}", headers=auth)  # a 404: still its route
    answer = with_token.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    for name in (
        "penguinmails_operations",
        "penguinmails_operations_queue_age_seconds",
        "penguinmails_operation_run_duration_seconds",
        "penguinmails_dns_records",
        "penguinmails_health_checks",
        "penguinmails_webhook_deliveries",
        "penguinmails_webhook_delivery_lag_seconds",
        "penguinmails_webhook_deliveries_failing",
        "penguinmails_http_request_duration_seconds",
        "penguinmails_sweep_duration_seconds",
        "penguinmails_sweep_batch_size",
    ):
        assert name in families, name
    ops = {
        (s.labels["kind"], s.labels["status"]): s.value
        for s in families["penguinmails_operations"].samples
    }
    assert ops[("up", "succeeded")] >= 1 and ops[("preview", "queued")] >= 1
    age = {
        s.labels["kind"]: s.value
        for s in families["penguinmails_operations_queue_age_seconds"].samples
    }
    assert age["preview"] >= 29
    runs = [
        s
        for s in families["penguinmails_operation_run_duration_seconds"].samples
        if s.name.endswith("_bucket")
        and s.labels["kind"] == "up"
        and s.labels["status"] == "succeeded"
    ]
    by_bound = {s.labels["le"]: s.value for s in runs}
    assert by_bound["5.0"] == 0 and by_bound["15.0"] >= 1 and by_bound["+Inf"] >= 1
    routes = {
        s.labels["route"] for s in families["penguinmails_http_request_duration_seconds"].samples
    }
    assert "/api/v1/workspaces" in routes, "labelled by route template"
    assert "/api/v1/inboxes/{inbox_id}" in routes, "never by the id"
    assert str(tenant.tenant.id) not in answer.text, "no tenant in any label"


def test_the_snapshot_counts_records_by_state(session: Session) -> None:
    before = service.snapshot(session, utcnow(), timedelta(hours=1))
    assert isinstance(before.dns_records, dict)
    assert batch_size(7) == 7 and batch_size(None) is None and batch_size(True) is None
