"""Health results: history, the latest state per server and check, alerts on change of state.

`apply_results` is the heart: it stores a batch of results, compares each with the state the
user was last told about (`notified_status`), records one `health.alert` per server for checks
that went bad (or worse) and one `health.recovered` for checks back to ok, and lets the server's
`status`/`mail_server_status` follow. `unknown` (the probe could not measure) never alerts and never
counts as a recovery, so a flaky measurement can't make alerts flap.

Set-based, since a sweep writes a batch of servers per transaction: the history rows and the
states go in one executemany each (Core statements compiled once and cached, not a multi-row
VALUES compiled per batch), the previous states are read as plain rows, and the server rows
follow in one executemany per kind of change instead of one UPDATE per server."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import HealthCheckResult, HealthCheckState
from database.models.servers import VpsServer
from domain.events import catalogue
from domain.events import service as events
from domain.health.schemas import CheckResultRead, CheckState
from domain.servers.states import MONITORED, SERVER, ServerStatus
from probes.tls import earliest_expiry
from probes.types import SEEN_HOST_KEY, Check, CheckResult, Status

# Server statuses the sweep probes, and the only ones it may change (never a provisioning or
# failed server: the operations worker owns those).
MONITORED_STATUSES = tuple(s.value for s in MONITORED)
BAD = (Status.WARNING.value, Status.CRITICAL.value)
MAIL_SERVER_STATUS = {
    Status.OK: "running",
    Status.WARNING: "degraded",
    Status.CRITICAL: "down",
}


@dataclass(frozen=True)
class ServerInfo:
    vps_id: uuid.UUID
    tenant_id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    hostname: str


@dataclass(frozen=True)
class Change:
    check: str
    status: str
    previous: str | None
    detail: str
    value: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "previous": self.previous,
            "detail": self.detail,
            "value": self.value,
        }


# Core tables: the ORM's bulk paths cost more per row than the statements themselves here.
_SERVERS = cast(Table, VpsServer.__table__)
_RESULTS = cast(Table, HealthCheckResult.__table__)
_STATES = cast(Table, HealthCheckState.__table__)
_STATE_COLUMNS = (
    "status",
    "value",
    "detail",
    "data",
    "checked_at",
    "status_since",
    "notified_status",
)
_UPSERT_STATE = (lambda stmt: stmt.on_conflict_do_update(
    index_elements=[_STATES.c.vps_id, _STATES.c.check],
    set_={c: stmt.excluded[c] for c in _STATE_COLUMNS},
))(insert(_STATES))  # fmt: skip


def _pin_host_keys(session: Session, batch: Sequence[tuple[ServerInfo, list[CheckResult]]]) -> None:
    """Trust on first use: the first host key a server shows is kept, never replaced here."""
    pins = [
        {"b_id": server.vps_id, "b_key": key}
        for server, results in batch
        for r in results
        if (key := r.data.pop(SEEN_HOST_KEY, None))
    ]
    if pins:
        session.execute(
            update(_SERVERS)
            .where(_SERVERS.c.id == bindparam("b_id"), _SERVERS.c.ssh_host_key.is_(None))
            .values(ssh_host_key=bindparam("b_key")),
            pins,
        )


def apply_results(
    session: Session, batch: Sequence[tuple[ServerInfo, list[CheckResult]]], now: datetime
) -> list[Event]:
    if not any(results for _, results in batch):
        return []
    ids = [server.vps_id for server, _ in batch]
    _pin_host_keys(session, batch)
    session.execute(
        insert(_RESULTS),
        [
            {
                "tenant_id": server.tenant_id,
                "vps_id": server.vps_id,
                "check": r.check.value,
                "status": r.status.value,
                "value": r.value,
                "detail": r.detail,
                "data": r.data,
                "checked_at": now,
            }
            for server, results in batch
            for r in results
        ],
    )
    # Locked: two sweeps running at once must not both alert on the same change.
    previous = {
        (s.vps_id, s.check): s
        for s in session.execute(
            select(_STATES.c.vps_id, _STATES.c.check, _STATES.c.status_since)
            .add_columns(_STATES.c.status, _STATES.c.notified_status)
            .where(_STATES.c.vps_id.in_(ids))
            .order_by(_STATES.c.vps_id, _STATES.c.check)
            .with_for_update()
        )
    }
    rows: list[dict[str, Any]] = []
    recorded: list[Event] = []
    follows: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for server, results in batch:
        alerts: list[Change] = []
        recoveries: list[Change] = []
        for r in results:
            old = previous.get((server.vps_id, r.check.value))
            notified = old.notified_status if old else None
            status = r.status.value
            change = Change(r.check.value, status, notified, r.detail, r.value)
            if status in BAD and status != notified:
                alerts.append(change)
                notified = status
            elif status == Status.OK.value:
                if notified in BAD:
                    recoveries.append(change)
                notified = status
            rows.append(
                {
                    "vps_id": server.vps_id,
                    "check": r.check.value,
                    "tenant_id": server.tenant_id,
                    "status": status,
                    "value": r.value,
                    "detail": r.detail,
                    "data": r.data,
                    "checked_at": now,
                    "status_since": old.status_since if old and old.status == status else now,
                    "notified_status": notified,
                }
            )
        recorded += _notify(session, server, alerts, recoveries)
        _follow(server, results, follows)
    session.execute(_UPSERT_STATE, rows)
    _apply_follows(session, follows)
    return recorded


def _notify(
    session: Session, server: ServerInfo, alerts: list[Change], recoveries: list[Change]
) -> list[Event]:
    out = []
    for kind, changes in (
        (catalogue.HEALTH_ALERT, alerts),
        (catalogue.HEALTH_RECOVERED, recoveries),
    ):
        if not changes:
            continue
        summary = "; ".join(f"{c.check} {c.status}: {c.detail}" for c in changes)
        verb = "needs attention" if kind is catalogue.HEALTH_ALERT else "recovered"
        out.append(
            events.record(
                session,
                tenant_id=server.tenant_id,
                workspace_id=server.workspace_id,
                type=kind,
                message=f"{server.name} ({server.hostname}) {verb}: {summary}"[:1000],
                subject_type="vps",
                subject_id=server.vps_id,
                data={
                    "vps_id": str(server.vps_id),
                    "hostname": server.hostname,
                    "checks": [c.as_dict() for c in changes],
                },
            )
        )
    return out


def _follow(
    server: ServerInfo,
    results: list[CheckResult],
    follows: dict[tuple[str, ...], list[dict[str, Any]]],
) -> None:
    """What the server row follows from its checks, gathered by kind of change (the columns
    set, and the statuses it may be changed from) for `_apply_follows`."""
    by_check = {r.check: r for r in results}
    values: dict[str, Any] = {}
    sources: list[str] = list(MONITORED_STATUSES)
    reachable = by_check.get(Check.REACHABLE)
    if reachable and reachable.status in (Status.OK, Status.CRITICAL):
        target = ServerStatus.READY if reachable.status is Status.OK else ServerStatus.UNREACHABLE
        values["status"] = target.value
        sources = [s for s in MONITORED_STATUSES if SERVER.allowed(s, target)]
    mail = by_check.get(Check.MAIL_SERVER)
    if mail and mail.status in MAIL_SERVER_STATUS:
        values["mail_server_status"] = MAIL_SERVER_STATUS[mail.status]
    tls = by_check.get(Check.TLS)
    expiry = earliest_expiry(tls) if tls else None
    if expiry is not None:
        values["ssl_certificate_expires"] = expiry
    if values:
        kind = (*sorted(values), "|", *sources)
        follows.setdefault(kind, []).append({"b_id": server.vps_id, **values})


def _apply_follows(session: Session, follows: dict[tuple[str, ...], list[dict[str, Any]]]) -> None:
    """Only servers the sweep owns are touched (status among the kind's sources)."""
    for kind, params in follows.items():
        split = kind.index("|")
        columns, sources = kind[:split], list(kind[split + 1 :])
        session.execute(
            update(_SERVERS)
            # or_, not in_: an expanding IN cannot be executed many times.
            .where(
                _SERVERS.c.id == bindparam("b_id"), or_(*(_SERVERS.c.status == s for s in sources))
            )
            .values({c: bindparam(c) for c in columns}),
            params,
        )


def latest_for_server(session: Session, vps_id: uuid.UUID) -> list[dict[str, Any]]:
    """The latest result per check, in `CheckState`'s shape (for `GET /vps/{id}`); the caller
    has scoped the server to its tenant already. One indexed read of at most six rows."""
    order = {c.value: i for i, c in enumerate(Check)}
    states = session.scalars(select(HealthCheckState).where(HealthCheckState.vps_id == vps_id))
    ordered = sorted(states, key=lambda s: order.get(s.check, 99))
    return [CheckState.model_validate(s).model_dump() for s in ordered]


def history(
    session: Session,
    vps_id: uuid.UUID,
    *,
    since: datetime | None,
    check: str | None,
    limit: int,
    offset: int,
) -> tuple[list[CheckResultRead], int]:
    conditions = [HealthCheckResult.vps_id == vps_id]
    if since is not None:
        conditions.append(HealthCheckResult.checked_at >= since)
    if check is not None:
        conditions.append(HealthCheckResult.check == check)
    total = (
        session.scalar(select(func.count()).select_from(HealthCheckResult).where(*conditions)) or 0
    )
    rows = session.scalars(
        select(HealthCheckResult)
        .where(*conditions)
        .order_by(HealthCheckResult.checked_at.desc(), HealthCheckResult.check)
        .limit(limit)
        .offset(offset)
    )
    return [CheckResultRead.model_validate(r) for r in rows], total


def purge_history(session: Session, now: datetime, retention: timedelta, batch: int = 10000) -> int:
    """Delete one batch of results older than the retention; the caller loops in short
    transactions until it returns less than `batch`."""
    old = (
        select(HealthCheckResult.id)
        .where(HealthCheckResult.checked_at < now - retention)
        .limit(batch)
        .scalar_subquery()
    )
    result = session.execute(delete(HealthCheckResult).where(HealthCheckResult.id.in_(old)))
    return int(getattr(result, "rowcount", 0) or 0)


def latest_for_servers(
    session: Session, tenant_id: uuid.UUID, vps_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """`latest_for_server` for a page of servers in one read (the console's fleet table)."""
    out: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in vps_ids}
    if not vps_ids:
        return out
    order = {c.value: i for i, c in enumerate(Check)}
    states = session.scalars(
        select(HealthCheckState).where(
            HealthCheckState.tenant_id == tenant_id, HealthCheckState.vps_id.in_(list(vps_ids))
        )
    )
    for s in sorted(states, key=lambda s: order.get(s.check, 99)):
        out[s.vps_id].append(CheckState.model_validate(s).model_dump())
    return out
