"""Enqueueing and reading operations (the queue's producer side). Workers claim and run them in
`automation.queue`. An operation row is written in the same transaction as the desired state it
applies, so it exists exactly when that state is committed."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.pagination import paginate
from database.scoping import get_owned
from domain.inboxes.states import INBOX, InboxStatus
from domain.operations.states import FINISHED, OPERATION, OperationStatus
from domain.servers.states import SERVER, ServerStatus
from domain.workspaces import service as workspaces
from kit.errors import Conflict, Unavailable, ValidationFailed
from kit.time import utcnow
from settings.operations import OperationSettings

KINDS = ("up", "preview", "refresh", "destroy")


def settle(
    session: Session,
    op: Operation,
    status: OperationStatus,
    *,
    error: str | None = None,
    now: datetime | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Put `op` in a finished state. The lease is dropped with it: a finished operation has no
    owner, so nothing can take it over or write its results again. `superseded`: a run that
    lost its worker and was folded into the workspace's queued `up` (its summary names it:
    `superseded_by`), which applies the same desired state."""
    if status not in FINISHED:
        raise ValueError(f"{status!r} is not a finished state")
    OPERATION.move(op, status)
    op.finished_at = now or utcnow()
    op.error = error[:4000] if error else None
    op.lease_owner, op.lease_expires_at = None, None
    if summary is not None:
        # Assigned whole: JSONB is not mutation-tracked.
        op.summary = {**(op.summary or {}), **summary}


def enqueue(
    session: Session,
    workspace: Workspace,
    kind: str = "up",
    reason: str = "",
    *,
    settings: OperationSettings,
    workspace_locked: bool = False,
) -> Operation:
    """Queue `kind` for the workspace's stack. An `up` joins the one already queued, if any, so a
    burst of changes is applied by one run; its start waits `coalesce_seconds` for more.
    `workspace_locked`: the caller holds the workspace row lock already (an inbox create),
    so it is not taken again; an `up` is then one statement."""
    if kind not in KINDS:
        raise ValidationFailed(f"unknown operation kind {kind!r}", field="kind")
    if kind == "preview":
        # A preview not yet started computes exactly what a new one would: reuse it, so a
        # client polling previews adds no work. The workspace lock makes concurrent requests
        # agree on one.
        workspaces.lock_by_id(session, workspace.id)
        pending = session.scalars(
            select(Operation).where(
                Operation.workspace_id == workspace.id,
                Operation.kind == "preview",
                Operation.status == "queued",
            )
        ).first()
        if pending is not None:
            return pending
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
    # Lock order: the workspace before its operations (callers that change the fleet hold it
    # already and say so).
    if not workspace_locked:
        workspaces.lock_by_id(session, workspace.id)
    params = up_params(workspace, reason, settings=settings)
    # Insert the queued up, or else join the one there is, locking it until this transaction
    # commits: a worker claims with SKIP LOCKED, so it cannot start that run before the change
    # we are making is committed. One statement: the insert's ON CONFLICT, then the update of
    # the row it conflicted with (`joins + 1`). If a worker claimed that row meanwhile, the
    # update's re-check sees `running` and returns nothing, and the next insert no longer
    # conflicts. The count is what tells a claim whose snapshot predates our commit (it then
    # locks the row just after we release it) that its loaded desired state lacks this change.
    for _ in range(5):
        joined: Operation | None = session.scalars(
            select(Operation)
            .from_statement(_INSERT_OR_JOIN_UP)
            .execution_options(populate_existing=True),
            {**params, "up_id": uuid.uuid4()},
        ).first()
        if joined is not None:
            return joined
    raise Unavailable("the workspace's queue is too busy; try again", field="workspace_id")


def up_ctes(only_if: str = "true") -> str:
    """The queued `up` inserted, or else joined: the CTEs `up_inserted` and `up_joined`, for
    `enqueue` and for a statement that queues its own change's run (domain.warmup.admission),
    bound with `up_params`. `only_if`: an SQL condition under which
    the statement queues anything. Both CTEs see the statement's snapshot: when a worker
    claimed the queued row since, both are empty, and the caller queues again."""
    # `only_if` is SQL of this code base (a module constant), never a caller's input.
    return _UP_CTES.replace("ONLY_IF", only_if)


# Literal SQL, not bound parameters, for the partial index's predicate: once psycopg prepares
# the statement (after 5 runs on a connection), Postgres cannot match a parameterised predicate
# to the partial index and refuses the ON CONFLICT.
_UP_CTES = """
up_inserted AS (
    INSERT INTO operations (id, tenant_id, workspace_id, kind, status, reason, run_after,
                            max_attempts, attempts)
    SELECT :up_id, :up_tenant, :up_workspace, 'up', 'queued', :up_reason, :up_run_after,
           :up_max_attempts, 0
    WHERE ONLY_IF
    ON CONFLICT (workspace_id) WHERE status = 'queued' AND kind = 'up' DO NOTHING
    RETURNING *
), up_joined AS (
    UPDATE operations SET joins = joins + 1
    WHERE workspace_id = :up_workspace AND status = 'queued' AND kind = 'up' AND ONLY_IF
    RETURNING *
)"""


_INSERT_OR_JOIN_UP = text(
    "WITH " + up_ctes() + " SELECT * FROM up_inserted UNION ALL SELECT * FROM up_joined"  # noqa: S608
)


def up_params(workspace: Workspace, reason: str, *, settings: OperationSettings) -> dict[str, Any]:
    """The bound parameters of `up_ctes`: an `up` of `workspace` with a new id, starting once
    `coalesce_seconds` have passed for more changes to join it."""
    return {
        "up_id": uuid.uuid4(),
        "up_tenant": workspace.tenant_id,
        "up_workspace": workspace.id,
        "up_reason": reason[:255] or None,
        "up_run_after": utcnow() + timedelta(seconds=settings.coalesce_seconds),
        "up_max_attempts": settings.max_attempts,
    }


def lock_queued_up(session: Session, workspace_id: uuid.UUID) -> Operation | None:
    """The workspace's queued `up` (at most one: a partial unique index), locked until commit
    so no worker can start it meanwhile."""
    return session.scalars(
        select(Operation)
        .where(
            Operation.workspace_id == workspace_id,
            Operation.status == OperationStatus.QUEUED,
            Operation.kind == "up",
        )
        .with_for_update()
    ).first()


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
    kind: str | None = None,
) -> tuple[Sequence[Operation], int]:
    where = [Operation.tenant_id == tenant_id, Operation.workspace_id == workspace_id]
    if status:
        where.append(Operation.status == status)
    if kind:
        where.append(Operation.kind == kind)
    return paginate(
        session,
        Operation,
        where,
        order_by=(Operation.created_at.desc(), Operation.id),
        limit=limit,
        offset=offset,
    )


def cancel(session: Session, tenant_id: uuid.UUID, operation_id: uuid.UUID) -> Operation:
    """Cancel a queued operation. A cancelled `up` settles what it carried, so nothing waits
    for a run that will not come: servers and inboxes still to be created become `failed`
    (a retry of this operation resumes them), and deletions not yet applied are undone."""
    op = get(session, tenant_id, operation_id)
    workspace = workspaces.lock_by_id(session, op.workspace_id)
    assert workspace is not None  # the operation's foreign key
    session.refresh(op, with_for_update={"key_share": True})
    if op.status != "queued":
        raise Conflict(
            f"operation is {op.status}; only a queued operation can be cancelled", field="status"
        )
    settle(session, op, OperationStatus.CANCELLED, error=None)
    if op.kind == "up":
        _settle_carried(session, workspace, op)
    return op


def _settle_carried(session: Session, workspace: Workspace, op: Operation) -> None:
    reason = f"operation {op.id} was cancelled; retry it to apply the change"
    servers = session.scalars(
        select(VpsServer)
        .where(
            VpsServer.workspace_id == workspace.id,
            VpsServer.status.in_((ServerStatus.PROVISIONING, ServerStatus.DELETING)),
        )
        .order_by(VpsServer.id)
        .with_for_update(key_share=True)
    ).all()
    for server in servers:
        if server.status == ServerStatus.PROVISIONING:
            SERVER.move(server, ServerStatus.FAILED)
            server.status_reason = reason
        else:  # its deletion never ran: the server is still there
            SERVER.move(server, ServerStatus.READY if server.ip_address else ServerStatus.FAILED)
            server.status_reason = None if server.ip_address else reason
    inboxes = session.scalars(
        select(Inbox)
        .where(
            Inbox.workspace_id == workspace.id,
            Inbox.status.in_((InboxStatus.PENDING_SETUP, InboxStatus.DELETING)),
        )
        .order_by(Inbox.id)
        .with_for_update(key_share=True)
    ).all()
    for inbox in inboxes:
        if inbox.status == InboxStatus.PENDING_SETUP:
            INBOX.move(inbox, InboxStatus.FAILED)
        else:  # the mailbox was never removed; the DNS sweep returns it to `ready`
            INBOX.move(inbox, InboxStatus.DNS_PENDING if inbox.smtp_config else InboxStatus.FAILED)


def retry(
    session: Session,
    tenant_id: uuid.UUID,
    operation_id: uuid.UUID,
    *,
    settings: OperationSettings,
) -> Operation:
    """Queue the stack again after a failure or a cancel; servers and inboxes marked `failed`
    return to their pending states, and the new run resumes from what exists."""
    op = get(session, tenant_id, operation_id)
    if op.status not in (OperationStatus.FAILED, OperationStatus.CANCELLED):
        raise Conflict(
            f"operation is {op.status}; only a failed or cancelled operation can be retried",
            field="status",
        )
    workspace = workspaces.lock_by_id(session, op.workspace_id)
    assert workspace is not None  # the operation's foreign key
    failed = session.scalars(
        select(VpsServer)
        .where(VpsServer.workspace_id == workspace.id, VpsServer.status == ServerStatus.FAILED)
        .order_by(VpsServer.id)
    ).all()
    for server in failed:
        SERVER.move(server, ServerStatus.PROVISIONING)
        server.status_reason = None
    for inbox in session.scalars(
        select(Inbox)
        .where(Inbox.workspace_id == workspace.id, Inbox.status == InboxStatus.FAILED)
        .order_by(Inbox.id)
    ):
        INBOX.move(inbox, InboxStatus.PENDING_SETUP)
    return enqueue(session, workspace, op.kind, reason=f"retry of {op.id}", settings=settings)
