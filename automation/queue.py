"""The operations queue, worker side: claim, heartbeat, run, record.

    claim      one short transaction: the oldest due operation of a stack with nothing running,
               `FOR UPDATE SKIP LOCKED`; the partial unique index on running operations makes
               Postgres itself refuse a second run on one stack.
    run        outside any transaction: build the desired state, run the engine, heartbeat
               the lease meanwhile.
    finish     one short transaction: apply the results to the fleet's rows (only while the
               lease is still ours), or schedule a retry, or fail.

A worker that dies stops heartbeating; `requeue_expired` hands its operation to another.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from automation import desired_state
from automation.delayed import DelayedEngine
from automation.engine import Engine, NoopEngine, StackResult
from automation.errors import EngineError
from automation.fleet_results import apply_failure, apply_success
from database.session import session_scope
from domain.operations.model import Operation
from domain.workspaces.model import Workspace
from kit.time import utcnow
from settings import get_settings

log = logging.getLogger(__name__)


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().lease_seconds)


def requeue_expired(session: Session) -> int:
    """Operations whose worker stopped heartbeating go back to the queue (or fail when out of
    attempts). Set-based and idempotent."""
    now = utcnow()
    expired = and_(Operation.status == "running", Operation.lease_expires_at < now)
    reason = "worker lost its lease and no attempts are left"
    failed = session.scalars(
        update(Operation)
        .where(expired, Operation.attempts >= Operation.max_attempts)
        .returning(Operation)
        .values(status="failed", finished_at=now, lease_owner=None, error=reason)
    ).all()
    for op in failed:
        if op.kind in ("up", "refresh"):
            apply_failure(session, session.get_one(Workspace, op.workspace_id), op, reason)
    requeued = session.scalars(
        update(Operation)
        .where(expired)
        .returning(Operation.id)
        .values(
            status="queued",
            run_after=now,
            lease_owner=None,
            lease_expires_at=None,
            error="worker lost its lease; requeued",
        )
    ).all()
    return len(failed) + len(requeued)


def claim(session: Session, worker_id: str) -> Operation | None:
    running = aliased(Operation)
    candidate = session.scalars(
        select(Operation)
        .where(
            Operation.status == "queued",
            Operation.run_after <= utcnow(),
            ~exists().where(
                running.workspace_id == Operation.workspace_id, running.status == "running"
            ),
        )
        .order_by(Operation.run_after, Operation.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if candidate is None:
        return None
    now = utcnow()
    candidate.status = "running"
    candidate.lease_owner = worker_id
    candidate.lease_expires_at = now + _lease()
    candidate.heartbeat_at = now
    candidate.started_at = candidate.started_at or now
    candidate.attempts += 1
    session.flush()
    return candidate


def heartbeat(operation_id: uuid.UUID, worker_id: str) -> bool:
    now = utcnow()
    with session_scope() as session:
        updated = session.scalars(
            update(Operation)
            .where(
                Operation.id == operation_id,
                Operation.lease_owner == worker_id,
                Operation.status == "running",
            )
            .values(heartbeat_at=now, lease_expires_at=now + _lease())
            .returning(Operation.id)
        ).all()
    return bool(updated)


def engine_for(workspace: Workspace) -> Engine:
    settings = get_settings()
    if settings.engine_override == "noop":
        return NoopEngine()
    engine = desired_state.engine_for(workspace)
    if workspace.sandbox and settings.sandbox_latency_seconds > 0:
        return DelayedEngine(engine, settings.sandbox_latency_seconds)
    return engine


@dataclass
class _Claimed:
    id: uuid.UUID
    kind: str
    workspace_id: uuid.UUID


class _Heartbeat(threading.Thread):
    def __init__(self, operation_id: uuid.UUID, worker_id: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{operation_id}")
        self.operation_id, self.worker_id = operation_id, worker_id
        self.stopped = threading.Event()

    def run(self) -> None:
        interval = max(get_settings().lease_seconds / 3, 0.05)
        while not self.stopped.wait(interval):
            try:
                if not heartbeat(self.operation_id, self.worker_id):
                    # Another worker took the operation over; _finish discards this run.
                    log.warning("operation %s: lease lost while running", self.operation_id)
                    return
            except Exception:  # a database blip: keep trying until the lease runs out
                log.warning("heartbeat of %s failed", self.operation_id, exc_info=True)


EngineFactory = Callable[[Workspace], Engine]

_requeue_lock = threading.Lock()
_requeue_last = 0.0


def _maybe_requeue_expired() -> None:
    """Lease expiry is checked at most once a second per process, not on every idle poll of
    every worker thread."""
    global _requeue_last
    with _requeue_lock:
        now = time.monotonic()
        if now - _requeue_last < 1.0:
            return
        _requeue_last = now
    with session_scope() as session:
        requeue_expired(session)


def run_one(worker_id: str, engines: EngineFactory | None = None) -> bool:
    """Claim one due operation and run it. False when there was nothing to do. `engines`
    chooses the engine per workspace (default: the workspace's own, by its sandbox flag)."""
    _maybe_requeue_expired()
    try:
        with session_scope() as session:
            op = claim(session, worker_id)
            claimed = _Claimed(op.id, op.kind, op.workspace_id) if op else None
    except IntegrityError:
        # Another worker started this stack between our check and our update.
        return True
    if claimed is None:
        return False
    execute(claimed, worker_id, engines or engine_for)
    return True


def execute(claimed: _Claimed, worker_id: str, engines: EngineFactory) -> None:
    lines: list[str] = []
    beat = _Heartbeat(claimed.id, worker_id)
    beat.start()
    result: StackResult | None = None
    error: Exception | None = None
    try:
        with session_scope() as session:
            workspace = session.get_one(Workspace, claimed.workspace_id)
            config = desired_state.build_fleet_config(session, workspace)
            engine = engines(workspace)
            stack_name = workspace.stack_name
        run = getattr(engine, claimed.kind)
        result = run(stack_name, config, on_event=lines.append)
    except Exception as exc:  # every failure is recorded on the operation, never lost
        error = exc
    finally:
        beat.stopped.set()
        beat.join()
    _finish(claimed, worker_id, result, error, lines)


def _owned(session: Session, claimed: _Claimed, worker_id: str) -> Operation | None:
    return session.scalars(
        select(Operation)
        .where(
            Operation.id == claimed.id,
            Operation.lease_owner == worker_id,
            Operation.status == "running",
        )
        .with_for_update()
    ).first()


def _finish(
    claimed: _Claimed,
    worker_id: str,
    result: StackResult | None,
    error: Exception | None,
    lines: list[str],
) -> None:
    settings = get_settings()
    with session_scope() as session:
        op = _owned(session, claimed, worker_id)
        if op is None:
            log.warning("operation %s was taken over; discarding this run's result", claimed.id)
            return
        workspace = session.get_one(Workspace, op.workspace_id)
        log_lines = result.log if result is not None and result.log else lines
        op.log = "\n".join(log_lines[-settings.log_tail_lines :])
        op.lease_owner = None
        op.lease_expires_at = None
        if result is not None and error is None:
            op.status = "succeeded"
            op.finished_at = utcnow()
            op.error = None
            op.resource_changes = [c.as_dict() for c in result.changes]
            summary: dict[str, object] = {"changes": dict(result.summary), "worker": worker_id}
            if op.kind in ("up", "refresh"):
                summary["steps"] = apply_success(session, workspace, op, result)
            # Assigned whole, after the pipeline's flushes: JSONB is not mutation-tracked.
            op.summary = summary
            return
        assert error is not None
        message = str(error) or error.__class__.__name__
        transient = isinstance(error, EngineError) and error.transient
        op.error = message[:4000]
        if transient and op.attempts < op.max_attempts:
            delay = min(
                settings.retry_backoff_seconds * 2 ** (op.attempts - 1),
                settings.retry_backoff_max_seconds,
            )
            op.status = "queued"
            op.run_after = utcnow() + timedelta(seconds=delay)
            log.info("operation %s failed transiently (%s); retry in %.0fs", op.id, message, delay)
            return
        if not isinstance(error, EngineError):
            log.error("operation %s crashed", op.id, exc_info=error)
        op.status = "failed"
        op.finished_at = utcnow()
        if op.kind in ("up", "refresh"):
            apply_failure(session, workspace, op, message)
