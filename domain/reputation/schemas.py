import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SignalRead(BaseModel):
    name: str = Field(
        description="dns_auth, blocklist_ip, blocklist_domain, server_health, tls; with the "
        "server's delivery counters server_bounces, server_deferrals; with a connector's data "
        "also postmaster_spam_rate, postmaster_auth, postmaster_compliance, snds_filter, "
        "snds_complaints, snds_traps (docs/reputation.md)."
    )
    value: float | None = Field(description="0 (bad) to 1 (good); null: no data (not counted).")
    weight: float
    reason: str


class ReputationPoint(BaseModel):
    score: float
    computed_at: datetime
    signals: list[SignalRead]


class ReputationHistory(BaseModel):
    items: list[ReputationPoint]
    total: int
    limit: int
    offset: int


class ReputationRead(BaseModel):
    score: float = Field(description="The inbox's reputation_score, 0.00 (worst) to 1.00 (best).")
    scale: str
    computed_at: datetime | None = Field(description="Null: never computed; shown as it is now.")
    signals: list[SignalRead]
    history: ReputationHistory = Field(description="Each change, newest first (paginated).")


class ConnectorPut(BaseModel):
    """The credentials of one connector, write-only. google_postmaster takes one of
    `access_token` (a Google OAuth access token with the `postmaster.traffic.readonly` scope) or
    `service_account` (a Google service-account key JSON, as downloaded: `type`
    "service_account", `client_email`, `private_key_id`, `private_key`; the token is then
    obtained and refreshed by the connector); microsoft_snds takes `key` (the SNDS
    automated-access key)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    access_token: str | None = Field(default=None, min_length=1, max_length=4096)
    service_account: dict[str, Any] | None = Field(default=None)
    key: str | None = Field(default=None, min_length=1, max_length=256)


class FigureRead(BaseModel):
    subject: str = Field(description="A domain (google_postmaster) or an IP (microsoft_snds).")
    figures: dict[str, Any] = Field(description="Null figures could not be read: unknown.")
    fetched_at: datetime


class ConnectorRead(BaseModel):
    workspace_id: uuid.UUID
    kind: str = Field(description="google_postmaster or microsoft_snds.")
    credentials: list[str] = Field(description="Names of the stored credentials, never values.")
    last_fetched_at: datetime | None
    last_error: str
    created_at: datetime | None
    updated_at: datetime | None
    figures: list[FigureRead]
