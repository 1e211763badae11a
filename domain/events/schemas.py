import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    type: str
    workspace_id: uuid.UUID | None
    subject_type: str | None
    subject_id: uuid.UUID | None
    message: str
    data: dict[str, Any]
    created_at: datetime
