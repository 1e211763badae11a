"""Health history and operations on one server. Restart and logs run a fixed command over SSH
(the workspace's key) inside the request; sandbox workspaces get a simulated server."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep
from api.errors import error_body
from api.retry import RetryingRoute
from database.models.workspaces import Workspace
from domain.health import server_ops, service, simulation
from domain.health.schemas import (
    HealthHistory,
    LogsRead,
    RestartResult,
    SimulateRequest,
    SimulationRead,
)
from probes.types import Check

router = APIRouter(route_class=RetryingRoute, prefix="/vps/{vps_id}", tags=["vps"])


@router.get("/health", response_model=HealthHistory, summary="Health check history, newest first")
def health_history(
    vps_id: uuid.UUID,
    session: SessionDep,
    key: CurrentKey,
    page: PageDep,
    since: Annotated[
        datetime | None, Query(description="Only results at or after this time (ISO 8601).")
    ] = None,
    check: Annotated[Check | None, Query(description="Only this check.")] = None,
) -> HealthHistory:
    server = server_ops.server_of_tenant(session, key.tenant_id, vps_id)
    workspace = session.get(Workspace, server.workspace_id)
    items, total = service.history(
        session,
        server.id,
        since=since,
        check=check.value if check else None,
        limit=page.limit,
        offset=page.offset,
    )
    return HealthHistory(
        vps_id=server.id,
        simulated=bool(workspace and workspace.sandbox),
        items=items,
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/mail-server/restart",
    response_model=RestartResult,
    responses={409: {"description": "The server is still provisioning"}, 502: {}},
    summary="Restart the mail server (Stalwart) over SSH",
)
def restart_mail_server(
    vps_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> JSONResponse:
    result = server_ops.restart(session, key.tenant_id, vps_id, settings=settings)
    body = result.model_dump(mode="json")
    if result.outcome != "restarted":
        # Answered, not raised: the failure is recorded as an event, which a raise would roll
        # back with the request's transaction.
        error = error_body("mail_server_restart_failed", result.detail, "vps_id", [body])
        return JSONResponse(status_code=502, content=error)
    return JSONResponse(status_code=200, content=body)


@router.get("/logs", response_model=LogsRead, summary="The last lines of the mail server's log")
def mail_server_logs(
    vps_id: uuid.UUID,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    lines: Annotated[int, Query(ge=1, le=1000, description="How many lines (1..1000).")] = 100,
) -> LogsRead:
    return server_ops.logs(session, key.tenant_id, vps_id, lines, settings=settings)


@router.post(
    "/simulate",
    response_model=SimulationRead,
    responses={409: {"description": "Not a sandbox server, or being deleted"}},
    summary="Sandbox only: make a health check fail or recover at the next sweeps",
)
def simulate_health(
    vps_id: uuid.UUID, body: SimulateRequest, session: SessionDep, key: CurrentKey
) -> SimulationRead:
    """The next monitoring.health sweeps report `status` for `check` on this sandbox server
    (through the usual history, alert thresholds, events and webhooks); `ok` ends it."""
    return simulation.simulate(session, key.tenant_id, vps_id, body)


@router.get("/simulate", response_model=SimulationRead, summary="The checks simulated now")
def simulated_health(vps_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> SimulationRead:
    return simulation.current(session, key.tenant_id, vps_id)
