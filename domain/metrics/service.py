"""What the database knows, for `/metrics`: operations by kind and status with the age of the
oldest queued one, run durations of recent operations, DNS records by verification state,
health checks by state, webhook deliveries by status with the delivery lag. Aggregates over
every tenant (the operator's view, behind the metrics token): counts only, no tenant's ids or
names in any label."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.health import HealthCheckState
from database.models.operations import Operation
from database.models.webhooks import WebhookDelivery
from domain.operations.states import OperationStatus

RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass
class RunDurations:
    """A histogram of finished runs: cumulative counts at each of RUN_BUCKETS, then +Inf."""

    buckets: list[int]
    count: int
    total_seconds: float


@dataclass
class Snapshot:
    operations: dict[tuple[str, str], int] = field(default_factory=dict)
    queue_age_seconds: dict[str, float] = field(default_factory=dict)
    run_durations: dict[tuple[str, str], RunDurations] = field(default_factory=dict)
    dns_records: dict[str, int] = field(default_factory=dict)
    health_checks: dict[tuple[str, str], int] = field(default_factory=dict)
    webhook_deliveries: dict[str, int] = field(default_factory=dict)
    webhook_lag_seconds: float = 0.0
    webhook_failing_attempts: int = 0


def snapshot(session: Session, now: datetime, window: timedelta) -> Snapshot:
    """A few grouped reads on indexed columns; `window` bounds the run durations read."""
    out = Snapshot()
    for kind, status, count in session.execute(
        select(Operation.kind, Operation.status, func.count()).group_by(
            Operation.kind, Operation.status
        )
    ):
        out.operations[(kind, status)] = count
    for kind, oldest in session.execute(
        select(Operation.kind, func.min(Operation.run_after))
        .where(Operation.status == OperationStatus.QUEUED.value)
        .group_by(Operation.kind)
    ):
        out.queue_age_seconds[kind] = max(0.0, (now - oldest).total_seconds())
    seconds = func.extract("epoch", Operation.finished_at - Operation.started_at)
    columns = [func.count().filter(seconds <= b) for b in RUN_BUCKETS]
    for kind, status, count, total, *buckets in session.execute(
        select(Operation.kind, Operation.status, func.count(), func.sum(seconds), *columns)
        .where(
            Operation.finished_at >= now - window,
            Operation.started_at.is_not(None),
        )
        .group_by(Operation.kind, Operation.status)
    ):
        out.run_durations[(kind, status)] = RunDurations(
            [int(b) for b in buckets] + [int(count)], int(count), float(total or 0.0)
        )
    for state, count in session.execute(
        select(DnsRecord.verification_status, func.count()).group_by(DnsRecord.verification_status)
    ):
        out.dns_records[state or "pending"] = count
    for check, status, count in session.execute(
        select(HealthCheckState.check, HealthCheckState.status, func.count()).group_by(
            HealthCheckState.check, HealthCheckState.status
        )
    ):
        out.health_checks[(check, status)] = count
    for status, count in session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    ):
        out.webhook_deliveries[status] = count
    pending = WebhookDelivery.status == "pending"
    oldest_due = session.scalar(
        select(func.min(WebhookDelivery.created_at)).where(
            pending, WebhookDelivery.next_attempt_at <= now
        )
    )
    if oldest_due is not None:
        out.webhook_lag_seconds = max(0.0, (now - oldest_due).total_seconds())
    out.webhook_failing_attempts = (
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(pending, WebhookDelivery.attempts > 0)
        )
        or 0
    )
    return out
