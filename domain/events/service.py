import uuid
from typing import Any

from sqlalchemy.orm import Session

from domain.events.model import Event


def record(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    type: str,
    message: str,
    workspace_id: uuid.UUID | None = None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    event = Event(
        tenant_id=tenant_id,
        workspace_id=workspace_id,
        type=type,
        message=message,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data or {},
    )
    session.add(event)
    return event
