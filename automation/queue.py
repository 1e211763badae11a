"""The operations queue, worker side: claim, heartbeat, run, record.

    claim      one short transaction, one statement: the oldest due operation of a stack with
               nothing running, `FOR UPDATE SKIP LOCKED`, and the desired state of its stack
               (`desired_state.FLEET_JSON`); the partial unique index on running operations
               makes Postgres itself refuse a second run on one stack.
    run        outside any transaction: run the engine; the process's one lease keeper
               (`_LeaseKeeper`) extends the lease meanwhile.
    finish     one short transaction: the workspace locked (with what decides which of the
               fleet's rows the results touch), the lease taken back, the results applied to
               the fleet's rows (only while the lease is still ours), or a retry scheduled, or
               a failure recorded.

A worker that dies stops heartbeating; `recover_expired` hands its operation to another, one
operation per transaction, so no operation's recovery can block another's. Every transaction
here follows the lock order in CONTRIBUTING.md and is retried whole after a deadlock.
"""

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, exists, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from automation import desired_state
from automation.engine import Engine, StackResult
from automation.engines import engine_for
from automation.errors import EngineError, SharedStateRequired
from database.models.dns_connections import DnsConnection
from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.outage import classify, outage, reason
from database.session import get_engine, session_scope
from database.transactions import is_disconnect, is_retryable, run_in_transaction
from domain.hosts import backends
from domain.operations.results import (
    FleetHints,
    RunOutputs,
    apply_destroyed,
    apply_failure,
    apply_success,
    unchanged_steps,
)
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
_CLAIM_SQL = """
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
RETURNING {returning}
"""
_CLAIM = text(_CLAIM_SQL.format(returning="*"))
# The claim with the desired state of the claimed operation's stack: one round trip. The fleet
# is read under the statement's snapshot, taken before the claim locks its row; a change that
# joined the queued up (operations.enqueue, `joins + 1`) may have committed in between, and
# then the fleet read lacks it. `seen_joins` is the count in the snapshot, `joins` the count
# of the row as locked: when they differ the claim reads the fleet again (`_claim_and_load`).
_STALE = "claimed.joins <> (SELECT seen.joins FROM operations AS seen WHERE seen.id = claimed.id)"
_CLAIM_AND_LOAD = text(
    f"WITH claimed AS ({_CLAIM_SQL.format(returning='id, kind, workspace_id, joins')})\n"
    f"SELECT claimed.id, claimed.kind, claimed.workspace_id, {desired_state.FLEET_JSON},\n"
    f"       {_STALE} AS stale\n"
    "FROM claimed JOIN workspaces w ON w.id = claimed.workspace_id"
)


def _claim_params(worker_id: str) -> dict[str, object]:
    now = utcnow()
    return {
        **OPERATION.edge(OperationStatus.QUEUED, OperationStatus.RUNNING),
        "worker_id": worker_id,
        "now": now,
        "lease_expires_at": now + _lease(),
    }


def claim(session: Session, worker_id: str) -> Operation | None:
    """The claim alone, the operation loaded as a row (tests, and callers that load the
    desired state themselves); `run_one` claims and loads in one statement."""
    return session.scalars(
        select(Operation).from_statement(_CLAIM).execution_options(populate_existing=True),
        _claim_params(worker_id),
    ).first()


# Every lease this process holds, extended in one statement: (id, owner) pairs.
_EXTEND = text(
    """
UPDATE operations SET heartbeat_at = :now, lease_expires_at = :lease_expires_at
FROM unnest(CAST(:ids AS uuid[]), CAST(:owners AS text[])) AS held(id, owner)
WHERE operations.id = held.id AND operations.lease_owner = held.owner
  AND operations.status = 'running'
RETURNING operations.id
"""
)


def _extend(held: list[tuple[uuid.UUID, str]]) -> set[uuid.UUID]:
    """The ids of the leases still ours, each extended by a lease from now."""
    now = utcnow()
    with session_scope(pre_ping=False) as session:
        kept = session.scalars(
            _EXTEND,
            {
                "now": now,
                "lease_expires_at": now + _lease(),
                "ids": [op_id for op_id, _ in held],
                "owners": [owner for _, owner in held],
            },
        ).all()
    return set(kept)


def heartbeat(operation_id: uuid.UUID, worker_id: str) -> bool:
    """Extend one lease; False when it is no longer ours."""
    return operation_id in _extend([(operation_id, worker_id)])


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


class _Lease:
    """One operation's lease, held while its run and finish last."""

    def __init__(self, operation_id: uuid.UUID, worker_id: str) -> None:
        self.operation_id, self.worker_id = operation_id, worker_id
        # When the lease was last extended (monotonic), i.e. claimed or heartbeated.
        self.last_success = time.monotonic()
        self.lost = False


class _LeaseKeeper:
    """One thread per process extends every lease the process holds, every third of a lease,
    in one statement; idle (no statement) while it holds none. A thread per operation cost a
    thread start and join per run, milliseconds each on a busy machine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[uuid.UUID, _Lease] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, operation_id: uuid.UUID, worker_id: str) -> _Lease:
        lease = _Lease(operation_id, worker_id)
        with self._lock:
            self._held[operation_id] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
                self._thread.start()
            self._wake.set()
        return lease

    def release(self, lease: _Lease) -> None:
        with self._lock:
            if self._held.get(lease.operation_id) is lease:
                del self._held[lease.operation_id]

    def _run(self) -> None:
        while True:
            with self._lock:
                idle = not self._held
                if idle:
                    self._wake.clear()
            if idle:
                self._wake.wait()
                continue
            time.sleep(max(get_settings().lease_seconds / 3, 0.05))
            self.beat()

    def beat(self) -> None:
        with self._lock:
            held = [lease for lease in self._held.values() if not lease.lost]
        if not held:
            return
        sent = time.monotonic()
        try:
            kept = _extend([(lease.operation_id, lease.worker_id) for lease in held])
        except Exception as exc:  # a database blip: keep trying until the leases run out
            if classify(exc) == "outage":
                outage.failed(reason(exc))
            else:
                log.warning("extending %d lease(s) failed", len(held), exc_info=True)
            return
        with self._lock:
            for lease in held:
                if lease.operation_id in kept:
                    lease.last_success = sent
                elif self._held.get(lease.operation_id) is lease:  # not just finished
                    # Another worker took the operation over; _finish discards this run.
                    lease.lost = True
                    log.warning("operation %s: lease lost while running", lease.operation_id)


_leases = _LeaseKeeper()


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
    one statement that also loads the desired state, and the finish."""
    _maybe_recover_expired()
    factory = engines or engine_for

    try:
        claimed = _claim_and_load(worker_id, factory)
    except IntegrityError:
        # Another worker started this stack between our check and our update.
        return True
    if claimed is None:
        return False
    execute(claimed, worker_id, factory)
    return True


def _autocommit() -> Connection:
    """A connection of the workers' engine in autocommit: one statement is its own
    transaction, with no BEGIN and no COMMIT round trip, and needs no Session."""
    return get_engine(pre_ping=False).connect().execution_options(isolation_level="AUTOCOMMIT")


def _claim_and_load(worker_id: str, factory: EngineFactory) -> _Claimed | None:
    """The claim and the desired state, in one statement. Once it has run the claim is
    committed, so nothing after it raises: every failure is recorded on the operation by the
    finish (a database error as a transient one, retried)."""
    with _autocommit() as conn:
        row = conn.execute(_CLAIM_AND_LOAD, _claim_params(worker_id)).first()
        if row is None:
            return None
        op_id, kind, workspace_id, fleet, stale = row
        if stale:  # a joining change committed after the snapshot: read what it committed
            fleet = desired_state.fleet_row(conn, workspace_id)
    claimed = _Claimed(op_id, kind, workspace_id)
    try:
        # What an engine factory may read of the workspace; in no session.
        workspace = Workspace(
            id=workspace_id,
            tenant_id=uuid.UUID(fleet["tenant_id"]),
            name=fleet["workspace_name"],
            sandbox=fleet["sandbox"],
            stack_name=fleet["stack_name"],
        )
        claimed.config = desired_state.config_from(fleet)
        claimed.engine = factory(workspace)
        claimed.stack_name = fleet["stack_name"]
        if not fleet["sandbox"]:
            with session_scope(pre_ping=False) as session:
                refuse_unshared_state(session)
    except Exception as exc:
        claimed.error = exc
    return claimed


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
    lease = _leases.hold(claimed.id, worker_id)
    result: StackResult | None = None
    error: Exception | None = claimed.error
    try:
        if error is None:
            try:
                if claimed.config is None:  # claimed by a caller that did not load it
                    with session_scope(pre_ping=False) as session:
                        workspace = session.get_one(Workspace, claimed.workspace_id)
                        claimed.config = desired_state.build_fleet_config(session, workspace)
                        claimed.engine = engines(workspace)
                        claimed.stack_name = workspace.stack_name
                        if not workspace.sandbox:
                            refuse_unshared_state(session)
                run = getattr(claimed.engine, claimed.kind)
                result = run(claimed.stack_name, claimed.config, on_event=lines.append)
            except Exception as exc:  # every failure is recorded on the operation, never lost
                error = exc
        # The lease is kept while the finish is retried: a finish that fails (deadlock,
        # database restart) must not leave the operation to look abandoned.
        _finish_with_retries(claimed, worker_id, result, error, lines, lease)
    finally:
        _leases.release(lease)


def _finish_with_retries(
    claimed: _Claimed,
    worker_id: str,
    result: StackResult | None,
    error: Exception | None,
    lines: list[str],
    lease_held: _Lease,
) -> None:
    """Record the run. A failure the database says to retry (deadlock, serialization, lost
    connection) is retried while the lease can still be ours; any other failure to record a
    success is recorded as the operation's failure instead. If nothing can be recorded before
    the lease has surely lapsed, recovery owns the operation and runs the stack again, which
    is safe: a stack run is idempotent."""
    lease = get_settings().lease_seconds
    try:
        if _record_unchanged(claimed, worker_id, result, error, lines):
            return
    except Exception as exc:  # the full finish below finds out what happened
        log.warning("operation %s: recording the run in one statement failed (%s)", claimed.id, exc)
    for attempt in range(FINISH_ATTEMPTS):
        try:
            run_in_transaction(
                lambda s, r=result, e=error: _finish(s, claimed, worker_id, r, e, lines),  # type: ignore[misc]
                pre_ping=False,
            )
            return
        except Exception as exc:
            if time.monotonic() - lease_held.last_success > lease:
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


# A successful run that changes no row of the fleet, recorded in one statement (its own
# transaction): a preview, or an up/refresh that reported no server and no DNS outcome
# (`results.unchanged_steps`) of a workspace with nothing marked for deletion and no DNS
# connection, re-checked here, where the full finish's pipeline would check them. Ownership as
# in the take-back. It locks the operation's row only, so no lock order can be broken; a
# change committed meanwhile comes with its own queued `up`.
_RECORD_UNCHANGED = text(
    """
UPDATE operations SET status = :target, finished_at = :now, error = NULL, lease_owner = NULL,
       lease_expires_at = NULL, log = :log, resource_changes = CAST(:changes AS jsonb),
       summary = coalesce(summary, '{}'::jsonb) || CAST(:summary AS jsonb), updated_at = now()
WHERE id = :id AND lease_owner = :worker_id AND status = :source
  AND (NOT :fleet OR (
      NOT EXISTS (SELECT 1 FROM vps_servers s
                  WHERE s.workspace_id = operations.workspace_id AND s.status = 'deleting')
      AND NOT EXISTS (SELECT 1 FROM inboxes i
                      WHERE i.workspace_id = operations.workspace_id AND i.status = 'deleting')
      AND NOT EXISTS (SELECT 1 FROM dns_connections c
                      WHERE c.workspace_id = operations.workspace_id)))
RETURNING id
"""
)


def _log_text(result: StackResult | None, lines: list[str]) -> str:
    log_lines = result.log if result is not None and result.log else lines
    return "\n".join(log_lines[-get_settings().log_tail_lines :])


def _record_unchanged(
    claimed: _Claimed,
    worker_id: str,
    result: StackResult | None,
    error: Exception | None,
    lines: list[str],
) -> bool:
    """True when the run was a success that changed no row and is now recorded; False when
    the full finish must record it (or find it taken over)."""
    if result is None or error is not None or claimed.kind not in ("preview", "up", "refresh"):
        return False
    changes = [c.as_dict() for c in result.changes]
    summary: dict[str, object] = {"changes": dict(result.summary), "worker": worker_id}
    if claimed.kind != "preview":
        steps = unchanged_steps(RunOutputs.of(result.outputs, changes))
        if steps is None:
            return False
        summary["steps"] = steps
    with _autocommit() as conn:
        recorded = conn.scalars(
            _RECORD_UNCHANGED,
            {
                **OPERATION.edge(OperationStatus.RUNNING, OperationStatus.SUCCEEDED),
                "id": claimed.id,
                "worker_id": worker_id,
                "now": utcnow(),
                "log": _log_text(result, lines),
                "changes": json.dumps(changes),
                "summary": json.dumps(summary),
                "fleet": claimed.kind != "preview",
            },
        ).first()
    return recorded is not None


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
    workspace, hints = _lock_workspace(session, claimed.workspace_id)
    log_text = _log_text(result, lines)
    op = _owned(session, claimed, worker_id, log_text) if workspace is not None else None
    if op is None or workspace is None:
        log.warning("operation %s was taken over; discarding this run's result", claimed.id)
        return
    if result is not None and error is None:
        _succeeded(session, workspace, op, result, worker_id, hints)
    else:
        assert error is not None
        _failed(session, workspace, op, error)


def _lock_workspace(
    session: Session, workspace_id: uuid.UUID
) -> tuple[Workspace | None, FleetHints]:
    """The workspace locked (`workspaces.lock_by_id`'s lock) and, read in the same statement,
    what lets the results pipeline leave the fleet's rows alone when a run reports nothing
    for them: rows marked for deletion, DNS connections."""
    deleting = exists().where(
        VpsServer.workspace_id == Workspace.id, VpsServer.status == "deleting"
    ) | exists().where(Inbox.workspace_id == Workspace.id, Inbox.status == "deleting")
    connected = exists().where(DnsConnection.workspace_id == Workspace.id)
    row = session.execute(
        select(Workspace, deleting.label("deleting"), connected.label("connected"))
        .where(Workspace.id == workspace_id)
        .with_for_update(key_share=True, of=Workspace)
    ).first()
    if row is None:
        return None, FleetHints()
    return row[0], FleetHints(deleting=bool(row[1]), dns_connected=bool(row[2]))


def _succeeded(
    session: Session,
    workspace: Workspace,
    op: Operation,
    result: StackResult,
    worker_id: str,
    hints: FleetHints,
) -> None:
    summary: dict[str, object] = {"changes": dict(result.summary), "worker": worker_id}
    op.resource_changes = [c.as_dict() for c in result.changes]
    if op.kind in ("up", "refresh"):
        run = RunOutputs.of(result.outputs, op.resource_changes)
        summary["steps"] = apply_success(session, workspace, op, run, get_settings(), hints)
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
