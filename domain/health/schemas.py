import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from probes.types import Check, Status


class CheckState(BaseModel):
    """The latest result of one check on one server."""

    model_config = ConfigDict(from_attributes=True)

    check: str = Field(description="reachable, mail_server, tls, disk, queue or dnsbl.")
    status: str = Field(description="ok, warning, critical or unknown (could not measure).")
    value: float | None = Field(
        description="The measurement: ms (reachable), days to the first certificate expiry "
        "(tls), % free (disk), queued messages (queue), zones listing the IP (dnsbl)."
    )
    detail: str
    data: dict[str, Any]
    checked_at: datetime
    status_since: datetime = Field(description="When the check entered this status.")


class CheckResultRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    check: str
    status: str
    value: float | None
    detail: str
    data: dict[str, Any]
    checked_at: datetime


class HealthHistory(BaseModel):
    vps_id: uuid.UUID
    simulated: bool = Field(description="True for sandbox servers: results are simulated.")
    items: list[CheckResultRead]
    total: int
    limit: int
    offset: int


class RestartResult(BaseModel):
    vps_id: uuid.UUID
    outcome: str = Field(description="restarted or failed.")
    simulated: bool = Field(description="True in sandbox workspaces: no server was touched.")
    detail: str
    event_id: uuid.UUID


class LogsRead(BaseModel):
    vps_id: uuid.UUID
    lines: list[str]
    requested: int
    simulated: bool = Field(description="True in sandbox workspaces: a simulated log.")
    source: str = Field(
        description="Where the lines come from (Stalwart JMAP x:Log, or GET /api/logs)."
    )


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check: Check = Field(description="The check to simulate (reachable, mail_server, tls, ...).")
    status: Status = Field(
        description="What the next sweeps report for it: `ok` ends the simulation of that check."
    )
    detail: str | None = Field(
        default=None,
        max_length=500,
        description="The detail the results carry (default: generated).",
    )


class SimulatedCheck(BaseModel):
    status: Status
    detail: str | None = None


class SimulationRead(BaseModel):
    vps_id: uuid.UUID
    checks: dict[str, SimulatedCheck] = Field(
        description="Every check currently simulated; the others report ok."
    )
