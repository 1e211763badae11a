import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class OperationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    status: str
    reason: str | None
    attempts: int
    max_attempts: int
    created_at: datetime | None
    run_after: datetime
    started_at: datetime | None
    finished_at: datetime | None
    resource_changes: list[Any] | None
    summary: dict[str, Any] | None
    log_tail: list[str]
    error: str | None

    @classmethod
    def of(cls, op: Any, tail: int = 50) -> "OperationRead":
        lines = (op.log or "").splitlines()[-tail:]
        data = {k: getattr(op, k) for k in cls.model_fields if k != "log_tail"}
        return cls(**data, log_tail=lines)
