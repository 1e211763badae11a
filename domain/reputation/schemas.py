from datetime import datetime

from pydantic import BaseModel, Field


class SignalRead(BaseModel):
    name: str = Field(description="dns_auth, blocklist_ip, blocklist_domain, server_health, tls.")
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
