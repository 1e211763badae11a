import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.workspaces import Workspace
from database.pagination import paginate
from domain.events.catalogue import EventType


def record(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    type: EventType,
    message: str,
    workspace_id: uuid.UUID | None = None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """The event, added to the session. Its workspace's name is copied in the INSERT itself (a
    subquery, no extra round trip), so the event keeps it once the workspace is deleted."""
    event = Event(
        tenant_id=tenant_id,
        workspace_id=workspace_id,
        workspace_name=(
            None
            if workspace_id is None
            else select(Workspace.name)
            .where(Workspace.id == workspace_id, Workspace.tenant_id == tenant_id)
            .scalar_subquery()
        ),
        type=type.name,
        message=message,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data or {},
    )
    session.add(event)
    return event


@dataclass(frozen=True)
class NewEvent:
    """One event for `record_many`, with the arguments of `record`."""

    tenant_id: uuid.UUID
    type: EventType
    message: str
    workspace_id: uuid.UUID | None = None
    subject_type: str | None = None
    subject_id: uuid.UUID | None = None
    data: dict[str, Any] | None = None


_INSERT_MANY = text(
    """
    INSERT INTO events (tenant_id, workspace_id, workspace_name, type, message, subject_type,
                        subject_id, data)
    SELECT v.tenant_id, v.workspace_id, w.name, v.type, v.message, v.subject_type,
           v.subject_id, COALESCE(v.data, '{}')
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(tenant_id uuid, workspace_id uuid, type text, message text, subject_type text,
              subject_id uuid, data jsonb, n bigint)
    LEFT JOIN workspaces w ON w.id = v.workspace_id AND w.tenant_id = v.tenant_id
    ORDER BY v.n
    """
)


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def record_many(session: Session, events: Sequence[NewEvent]) -> None:
    """Many events in one INSERT, from one JSON document (a sweep settles hundreds of inboxes
    at once; `record`'s INSERT per event, each with its workspace-name subquery, was most of
    its write time). The same rows `record` writes, in the given order."""
    if not events:
        return
    session.flush()  # rows `record` added go first, as they would have
    rows = [
        {"tenant_id": str(e.tenant_id), "workspace_id": _text(e.workspace_id),
         "type": e.type.name, "message": e.message, "subject_type": e.subject_type,
         "subject_id": _text(e.subject_id), "data": e.data or {}, "n": n}
        for n, e in enumerate(events)
    ]  # fmt: skip
    session.execute(_INSERT_MANY, {"rows": json.dumps(rows)})


def type_matches(pattern: str) -> ColumnElement[bool]:
    """`Event.type` is `pattern` (exact), or of its family (`dns.*`)."""
    if pattern.endswith(".*"):
        return func.starts_with(Event.type, pattern[:-1])
    return Event.type == pattern


def list_page(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    type: str | None = None,
    workspace_id: uuid.UUID | None = None,
    since: datetime | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Event], int]:
    """The tenant's events, newest first. `type` is exact, or a family ending in `.*`."""
    conditions = [Event.tenant_id == tenant_id]
    if type is not None:
        conditions.append(type_matches(type))
    if workspace_id is not None:
        conditions.append(Event.workspace_id == workspace_id)
    if since is not None:
        conditions.append(Event.created_at >= since)
    return paginate(
        session,
        Event,
        conditions,
        order_by=(Event.created_at.desc(), Event.id),
        limit=limit,
        offset=offset,
    )
