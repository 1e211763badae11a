"""Enqueueing and reading operations (the queue's producer side). Workers claim and run them in
`automation.queue`. An operation row is written in the same transaction as the desired state it
applies, so it exists exactly when that state is committed."""

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.pagination import paginate
from database.scoping import get_owned
from domain.operations.model import Operation
from domain.workspaces.model import Workspace
from kit.errors import Conflict, Unavailable, ValidationFailed
from kit.time import utcnow
from settings import get_settings

KINDS = ("up", "preview", "refresh", "destroy")
FINISHED = ("succeeded", "failed", "cancelled")


def enqueue(
    session: Session, workspace: Workspace, kind: str = "up", reason: str = ""
) -> Operation:
    """Queue `kind` for the workspace's stack. An `up` joins the one already queued, if any, so a
    burst of changes is applied by one run; its start waits `coalesce_seconds` for more."""
    if kind not in KINDS:
        raise ValidationFailed(f"unknown operation kind {kind!r}", field="kind")
    settings = get_settings()
    if kind != "up":
        op = Operation(
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            kind=kind,
            reason=reason[:255] or None,
            max_attempts=settings.max_attempts,
        )
        session.add(op)
        session.flush()
        return op
    run_after = utcnow() + timedelta(seconds=settings.coalesce_seconds)
    insert_up = (
        insert(Operation)
        .values(
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            kind="up",
            status="queued",
            reason=reason[:255] or None,
            run_after=run_after,
            max_attempts=settings.max_attempts,
            attempts=0,
        )
        .on_conflict_do_nothing(
            index_elements=["workspace_id"],
            # Literal SQL, not bound parameters: once psycopg prepares the statement (after 5
            # runs on a connection), Postgres cannot match a parameterised predicate to the
            # partial index and refuses the ON CONFLICT.
            index_where=text("status = 'queued' AND kind = 'up'"),
        )
        .returning(Operation.id)
    )
    # Join the queued up, locking it until this transaction commits: a worker claims with SKIP
    # LOCKED, so it cannot start that run before the change we are making is visible to it.
    # If a worker claimed it between our insert and our select, the select finds nothing (the
    # locked re-check sees `running`) and the next insert no longer conflicts.
    for _ in range(5):
        new_id = session.execute(insert_up.values(id=uuid.uuid4())).scalar()
        if new_id is not None:
            return session.get_one(Operation, new_id)
        queued = session.scalars(
            select(Operation)
            .where(
                Operation.workspace_id == workspace.id,
                Operation.status == "queued",
                Operation.kind == "up",
            )
            .with_for_update()
        ).first()
        if queued is not None:
            return queued
    raise Unavailable("the workspace's queue is too busy; try again", field="workspace_id")


def get(
    session: Session, tenant_id: uuid.UUID, operation_id: uuid.UUID, for_update: bool = False
) -> Operation:
    return get_owned(
        session,
        Operation,
        tenant_id,
        operation_id,
        noun="operation",
        field="operation_id",
        for_update=for_update,
    )


def list_page(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
) -> tuple[Sequence[Operation], int]:
    where = [Operation.tenant_id == tenant_id, Operation.workspace_id == workspace_id]
    if status:
        where.append(Operation.status == status)
    return paginate(
        session,
        Operation,
        where,
        order_by=(Operation.created_at.desc(), Operation.id),
        limit=limit,
        offset=offset,
    )


def cancel(session: Session, tenant_id: uuid.UUID, operation_id: uuid.UUID) -> Operation:
    op = get(session, tenant_id, operation_id, for_update=True)
    if op.status != "queued":
        raise Conflict(
            f"operation is {op.status}; only a queued operation can be cancelled", field="status"
        )
    op.status = "cancelled"
    op.finished_at = utcnow()
    return op


def retry(session: Session, tenant_id: uuid.UUID, operation_id: uuid.UUID) -> Operation:
    """Queue the stack again after a failure; servers and inboxes the failure marked `failed`
    return to their pending states, and the new run resumes from what exists."""
    from domain.inboxes.model import Inbox
    from domain.servers.model import VpsServer

    op = get(session, tenant_id, operation_id)
    if op.status != "failed":
        raise Conflict(
            f"operation is {op.status}; only a failed operation can be retried", field="status"
        )
    workspace = session.scalars(
        select(Workspace).where(Workspace.id == op.workspace_id).with_for_update()
    ).one()
    failed = session.scalars(
        select(VpsServer).where(
            VpsServer.workspace_id == workspace.id, VpsServer.status == "failed"
        )
    ).all()
    for server in failed:
        server.status, server.status_reason = "provisioning", None
    for inbox in session.scalars(
        select(Inbox).where(Inbox.workspace_id == workspace.id, Inbox.status == "failed")
    ):
        inbox.status = "pending_setup"
    return enqueue(session, workspace, op.kind, reason=f"retry of {op.id}")
