"""Simulated health for sandbox servers: make a check fail or recover, so users can exercise
alerts, recoveries and webhooks before going live. The results still flow through the real
monitoring.health sweep (history, alert thresholds, events, webhooks); only the probing is
replaced. Live servers are always probed: a simulation there would hide a real outage."""

import uuid

from sqlalchemy.orm import Session

from database.models.workspaces import Workspace
from domain.health.schemas import SimulatedCheck, SimulateRequest, SimulationRead
from domain.health.server_ops import server_of_tenant
from domain.servers.states import ServerStatus
from kit.errors import Conflict
from probes.types import Status


def _read(vps_id: uuid.UUID, simulation: dict[str, dict[str, str | None]]) -> SimulationRead:
    return SimulationRead(
        vps_id=vps_id,
        checks={c: SimulatedCheck.model_validate(v) for c, v in sorted(simulation.items())},
    )


def simulate(
    session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID, data: SimulateRequest
) -> SimulationRead:
    server = server_of_tenant(session, tenant_id, vps_id)
    workspace = session.get_one(Workspace, server.workspace_id)
    if not workspace.sandbox:
        raise Conflict(
            "health can be simulated only on servers of sandbox workspaces; this server is "
            "probed for real",
            field="vps_id",
        )
    if server.status == ServerStatus.DELETING:
        raise Conflict("server is being deleted", field="vps_id")
    simulation = dict(server.simulated_health or {})
    if data.status == Status.OK:
        simulation.pop(data.check.value, None)
    else:
        simulation[data.check.value] = {"status": data.status.value, "detail": data.detail}
    # Assigned whole: JSONB is not mutation-tracked.
    server.simulated_health = simulation or None
    session.flush()
    return _read(server.id, simulation)


def current(session: Session, tenant_id: uuid.UUID, vps_id: uuid.UUID) -> SimulationRead:
    server = server_of_tenant(session, tenant_id, vps_id)
    return _read(server.id, dict(server.simulated_health or {}))
