"""The operations queue, worker side: claim, heartbeat, run, record.

    claim      one short transaction: the oldest due operation of a stack with nothing running,
               `FOR UPDATE SKIP LOCKED`; the partial unique index on running operations makes
               Postgres itself refuse a second run on one stack.
    run        outside any transaction: build the desired state, run the engine, heartbeat
               the lease meanwhile.
    finish     one short transaction: apply the results to the fleet's rows (only while the
               lease is still ours), or schedule a retry, or fail.

A worker that dies stops heartbeating; `recover_expired` hands its operation to another, one
operation per transaction, so no operation's recovery can block another's. Every transaction
here follows the lock order in CONTRIBUTING.md and is retried whole after a deadlock.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, undefer_group

from automation import desired_state
from automation.engine import Engine, StackResult
from automation.engines import engine_for
from automation.errors import EngineError, SharedStateRequired
from database.models.operations import Operation
from database.models.workspaces import Workspace
from database.outage import classify, outage, reason
from database.session import session_scope
from database.transactions import is_disconnect, is_retryable, run_in_transaction
from domain.hosts import backends
from domain.operations.results import RunOutputs, apply_destroyed, apply_failure, apply_success
from domain.operations.service import lock_queued_up, settle
from domain.operations.states import OPERATION, OperationStatus
from domain.workspaces import service as workspaces
from kit.time import utcnow
from settings import get_settings
from stacks.config import FleetConfig

log = logging.getLogger(__name__)


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().lease_seconds)


@dataclass
class RecoveryReport:
    """What one pass of `recover_expired` did, per outcome; `errors` holds the ids of
    operations whose recovery failed this pass (logged, retried on the next pass)."""

    requeued: list[uuid.UUID] = field(default_factory=list)
    folded: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    errors: list[uuid.UUID] = field(default_factory=list)

    @property
    def recovered(self) -> int:
        return len(self.requeued) + len(self.folded) + len(self.failed)


def _expired_ids(session: Session, now: datetime) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(Operation.id)
            .where(Operation.status == "running", Operation.lease_expires_at < now)
            .order_by(Operation.lease_expires_at)
            .limit(500)
        )
    )


def _recover_one(session: Session, op_id: uuid.UUID, now: datetime) -> str | None:
    """One expired operation, in the lock order: its workspace, then the operation (skipped
    if another process is recovering it). An `up` folds into the workspace's queued `up` when
    there is one (the queued run applies the whole desired state, this one's included),
    carrying its attempts so a run that kills its worker every time still runs out of them."""
    workspace_id = session.scalar(select(Operation.workspace_id).where(Operation.id == op_id))
    if workspace_id is None:
        return None
    workspace = workspaces.lock_by_id(session, workspace_id)
    op = session.scalars(
        select(Operation)
        .where(
            Operation.id == op_id,
            Operation.status == "running",
            Operation.lease_expires_at < now,
        )
        .with_for_update(skip_locked=True)
    ).first()
    if op is None or workspace is None:
        return None
    lost_by = op.lease_owner
    op.lease_owner, op.lease_expires_at = None, None
    if op.attempts >= op.max_attempts:
        reason = "worker lost its lease and no attempts are left"
        settle(session, op, OperationStatus.FAILED, error=reason, now=now)
        if op.kind in ("up", "refresh"):
            apply_failure(session, workspace, op, reason)
        return "failed"
    queued = lock_queued_up(session, workspace.id) if op.kind == "up" else None
    if queued is not None:
        queued.attempts = max(queued.attempts, op.attempts)
        queued.run_after = min(queued.run_after, now)
        settle(
            session,
            op,
            OperationStatus.SUPERSEDED,
            error=f"worker {lost_by} lost its lease; folded into operation {queued.id}",
            now=now,
            summary={"superseded_by": str(queued.id)},
        )
        return "folded"
    OPERATION.move(op, OperationStatus.QUEUED)
    op.run_after = now
    op.error = f"worker {lost_by} lost its lease; requeued"
    return "requeued"


def recover_expired(now: datetime | None = None) -> RecoveryReport:
    """Operations whose worker stopped heartbeating go back to the queue, fold into the queued
    `up` of their workspace, or fail when out of attempts. Each in its own short transaction:
    one that cannot be recovered is logged and retried on the next pass, never blocking the
    others. Set-based and idempotent; tests call it directly."""
    now = now or utcnow()
    report = RecoveryReport()
    with session_scope() as session:
        ids = _expired_ids(session, now)
    for op_id in ids:
        try:
            outcome = run_in_transaction(lambda s, i=op_id: _recover_one(s, i, now))  # type: ignore[misc]
        except Exception:
            log.exception("operation %s: recovery failed; retrying on the next pass", op_id)
            report.errors.append(op_id)
            continue
        if outcome == "requeued":
            report.requeued.append(op_id)
        elif outcome == "folded":
            report.folded.append(op_id)
        elif outcome == "failed":
            report.failed.append(op_id)
    if report.recovered or report.errors:
        log.warning(
            "recovered %d expired operation(s): %d requeued, %d folded, %d failed; %d errors",
            report.recovered,
            len(report.requeued),
            len(report.folded),
            len(report.failed),
            len(report.errors),
        )
    return report


# Claim and load in one statement: the oldest due operation of a stack with nothing running,
# skipping rows another worker or an enqueue holds; the partial unique index on running
# operations makes Postgres refuse a second run on one stack (an IntegrityError).
_CLAIM = text(
    """
UPDATE operations SET status = :target, lease_owner = :worker_id,
       lease_expires_at = :lease_expires_at, heartbeat_at = :now,
       started_at = coalesce(started_at, :now), attempts = attempts + 1, updated_at = now()
WHERE id = (
    SELECT candidate.id FROM operations AS candidate
    WHERE candidate.status = :source AND candidate.run_after <= :now
      AND NOT EXISTS (
          SELECT 1 FROM operations AS running
          WHERE running.workspace_id = candidate.workspace_id AND running.status = 'running'
      )
    ORDER BY candidate.run_after, candidate.created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING *
"""
)


def claim(session: Session, worker_id: str) -> Operation | None:
    now = utcnow()
    return session.scalars(
        select(Operation).from_statement(_CLAIM).execution_options(populate_existing=True),
        {
            **OPERATION.edge(OperationStatus.QUEUED, OperationStatus.RUNNING),
            "worker_id": worker_id,
            "now": now,
            "lease_expires_at": now + _lease(),
        },
    ).first()


def heartbeat(operation_id: uuid.UUID, worker_id: str) -> bool:
    now = utcnow()
    with session_scope(pre_ping=False) as session:
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


@dataclass
class _Claimed:
    id: uuid.UUID
    kind: str
    workspace_id: uuid.UUID
    # Loaded in the claim's transaction (run_one); `error` if building them failed.
    config: FleetConfig | None = None
    engine: Engine | None = None
    stack_name: str = ""
    error: Exception | None = None


class _Heartbeat(threading.Thread):
    def __init__(self, operation_id: uuid.UUID, worker_id: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{operation_id}")
        self.operation_id, self.worker_id = operation_id, worker_id
        self.stopped = threading.Event()
        # When the lease was last extended (monotonic), i.e. claimed or heartbeated.
        self.last_success = time.monotonic()

    def run(self) -> None:
        interval = max(get_settings().lease_seconds / 3, 0.05)
        while not self.stopped.wait(interval):
            try:
                if not heartbeat(self.operation_id, self.worker_id):
                    # Another worker took the operation over; _finish discards this run.
                    log.warning("operation %s: lease lost while running", self.operation_id)
                    return
                self.last_success = time.monotonic()
            except Exception as exc:  # a database blip: keep trying until the lease runs out
                if classify(exc) == "outage":
                    outage.failed(reason(exc))
                else:
                    log.warning("heartbeat of %s failed", self.operation_id, exc_info=True)


EngineFactory = Callable[[Workspace], Engine]
# Attempts to record a run (about 25 s of backoff in all) before leaving it to recovery.
FINISH_ATTEMPTS = 14

_recover_lock = threading.Lock()
_recover_last = 0.0


def _maybe_recover_expired() -> None:
    """Lease expiry is checked at most once a second per process, not on every idle poll of
    every worker thread."""
    global _recover_last
    with _recover_lock:
        now = time.monotonic()
        if now - _recover_last < 1.0:
            return
        _recover_last = now
    recover_expired()


def run_one(worker_id: str, engines: EngineFactory | None = None) -> bool:
    """Claim one due operation and run it. False when there was nothing to do. `engines`
    chooses the engine per workspace (default: the workspace's own, by its sandbox flag).

    Two transactions per operation, on the workers' engine (no ping per checkout): the claim,
    which also loads the desired state, and the finish."""
    _maybe_recover_expired()
    factory = engines or engine_for

    def _claim(session: Session) -> _Claimed | None:
        op = claim(session, worker_id)
        if op is None:
            return None
        claimed = _Claimed(op.id, op.kind, op.workspace_id)
        try:
            workspace = session.get_one(
                Workspace, op.workspace_id, options=[undefer_group("secrets")]
            )
            claimed.config = desired_state.build_fleet_config(session, workspace)
            claimed.engine = factory(workspace)
            claimed.stack_name = workspace.stack_name
            if not workspace.sandbox:
                refuse_unshared_state(session)
        except DBAPIError:
            raise  # the claim is rolled back with it; the operation stays queued
        except Exception as exc:  # every other failure is recorded on the operation
            claimed.error = exc
        return claimed

    try:
        claimed = run_in_transaction(_claim, pre_ping=False)
    except IntegrityError:
        # Another worker started this stack between our check and our update.
        return True
    if claimed is None:
        return False
    execute(claimed, worker_id, factory)
    return True


def refuse_unshared_state(session: Session) -> None:
    """A live stack is refused, before the engine runs, while this host's Pulumi state is a
    machine-local file backend and workers of another host share the database: that host
    would see its own empty copy of the stack, order every server again, and never see this
    host's stack lock. The operation fails at once (permanent, `machine_local_pulumi_state`)
    with the message naming the backend to set; sandbox stacks (state in Postgres) run."""
    settings = get_settings()
    if settings.engine_override == "noop":
        return
    finding = backends.check(session, settings)
    if finding is not None:
        log.error("%s", finding.message)
        raise SharedStateRequired(finding.message, hosts=finding.hosts)


def execute(claimed: _Claimed, worker_id: str, engines: EngineFactory) -> None:
    lines: list[str] = []
    beat = _Heartbeat(claimed.id, worker_id)
    beat.start()
    result: StackResult | None = None
    error: Exception | None = claimed.error
    try:
        if error is None:
            try:
                if claimed.config is None:  # claimed by a caller that did not load it
                    with session_scope(pre_ping=False) as session:
                        workspace = session.get_one(
                            Workspace, claimed.workspace_id, options=[undefer_group("secrets")]
                        )
                        claimed.config = desired_state.build_fleet_config(session, workspace)
                        claimed.engine = engines(workspace)
                        claimed.stack_name = workspace.stack_name
                        if not workspace.sandbox:
                            refuse_unshared_state(session)
                run = getattr(claimed.engine, claimed.kind)
                result = run(claimed.stack_name, claimed.config, on_event=lines.append)
            except Exception as exc:  # every failure is recorded on the operation, never lost
                error = exc
        # The heartbeat keeps the lease while the finish is retried: a finish that fails
        # (deadlock, database restart) must not leave the operation to look abandoned.
        _finish_with_retries(claimed, worker_id, result, error, lines, beat)
    finally:
        beat.stopped.set()
        beat.join()


def _finish_with_retries(
    claimed: _Claimed,
    worker_id: str,
    result: StackResult | None,
    error: Exception | None,
    lines: list[str],
    beat: "_Heartbeat",
) -> None:
    """Record the run. A failure the database says to retry (deadlock, serialization, lost
    connection) is retried while the lease can still be ours; any other failure to record a
    success is recorded as the operation's failure instead. If nothing can be recorded before
    the lease has surely lapsed, recovery owns the operation and runs the stack again, which
    is safe: a stack run is idempotent."""
    lease = get_settings().lease_seconds
    for attempt in range(FINISH_ATTEMPTS):
        try:
            run_in_transaction(
                lambda s, r=result, e=error: _finish(s, claimed, worker_id, r, e, lines),  # type: ignore[misc]
                pre_ping=False,
            )
            return
        except Exception as exc:
            if time.monotonic() - beat.last_success > lease:
                break
            if not (is_retryable(exc) or is_disconnect(exc)) and error is None:
                log.error("operation %s: recording its result failed", claimed.id, exc_info=True)
                error = RuntimeError(f"recording the run's result failed: {exc}"[:1000])
                result = None
                continue
            log.warning("operation %s: recording the run failed (%s); retrying", claimed.id, exc)
            time.sleep(min(0.1 * 2**attempt, 2.0))
    log.error(
        "operation %s: could not record the run; recovery will run it again once its lease lapses",
        claimed.id,
    )


# Ownership re-checked, row locked, lease and log written, row loaded: one statement. The run's
# result is then applied and the operation settled by one more UPDATE at commit.
_TAKE_BACK = text(
    """
UPDATE operations SET lease_owner = NULL, lease_expires_at = NULL, log = :log, updated_at = now()
WHERE id = :id AND lease_owner = :worker_id AND status = 'running'
RETURNING *
"""
)


def _owned(session: Session, claimed: _Claimed, worker_id: str, log_text: str) -> Operation | None:
    return session.scalars(
        select(Operation).from_statement(_TAKE_BACK).execution_options(populate_existing=True),
        {"id": claimed.id, "worker_id": worker_id, "log": log_text},
    ).first()


def _finish(
    session: Session,
    claimed: _Claimed,
    worker_id: str,
    result: StackResult | None,
    error: Exception | None,
    lines: list[str],
) -> None:
    """Record a run, only while its lease is still ours."""
    # Lock order: the workspace first, as every request that changes its fleet does.
    workspace = workspaces.lock_by_id(session, claimed.workspace_id)
    log_lines = result.log if result is not None and result.log else lines
    log_text = "\n".join(log_lines[-get_settings().log_tail_lines :])
    op = _owned(session, claimed, worker_id, log_text) if workspace is not None else None
    if op is None or workspace is None:
        log.warning("operation %s was taken over; discarding this run's result", claimed.id)
        return
    if result is not None and error is None:
        _succeeded(session, workspace, op, result, worker_id)
    else:
        assert error is not None
        _failed(session, workspace, op, error)


def _succeeded(
    session: Session, workspace: Workspace, op: Operation, result: StackResult, worker_id: str
) -> None:
    summary: dict[str, object] = {"changes": dict(result.summary), "worker": worker_id}
    op.resource_changes = [c.as_dict() for c in result.changes]
    if op.kind in ("up", "refresh"):
        run = RunOutputs.of(result.outputs, op.resource_changes)
        summary["steps"] = apply_success(session, workspace, op, run, get_settings())
    elif op.kind == "destroy":
        summary["steps"] = apply_destroyed(session, workspace)
    # Assigned whole, after the pipeline's flushes: JSONB is not mutation-tracked.
    settle(session, op, OperationStatus.SUCCEEDED, summary=summary)


def _failed(session: Session, workspace: Workspace, op: Operation, error: Exception) -> None:
    """A transient failure is retried with doubling backoff while attempts remain; anything
    else fails the operation and the fleet rows it was building."""
    settings = get_settings()
    message = str(error) or error.__class__.__name__
    # The database failing under the engine (the sandbox keeps its state there) is an outage
    # or a conflict, not a broken fleet: retried like any transient failure.
    transient = (isinstance(error, EngineError) and error.transient) or (
        classify(error) is not None
    )
    if transient and op.attempts < op.max_attempts:
        delay = min(
            settings.retry_backoff_seconds * 2 ** (op.attempts - 1),
            settings.retry_backoff_max_seconds,
        )
        op.error = message[:4000]
        OPERATION.move(op, OperationStatus.QUEUED)
        op.run_after = utcnow() + timedelta(seconds=delay)
        log.info("operation %s failed transiently (%s); retry in %.0fs", op.id, message, delay)
        return
    if not isinstance(error, EngineError):
        log.error("operation %s crashed", op.id, exc_info=error)
    settle(session, op, OperationStatus.FAILED, error=message)
    if op.kind in ("up", "refresh"):
        apply_failure(session, workspace, op, message)
