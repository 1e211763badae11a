"""Counts over a tenant's workspaces for the console's overview and workspace pages: servers and
inboxes by status, domains by verification, open alerts, operations running or failed. A few
grouped reads per page whatever the fleet's size, each scoped by `tenant_id`."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Integer, String, and_, case, func, select
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.operations import Operation
from database.models.servers import VpsServer
from domain.dns_publishing.states import PublishStatus
from domain.operations.states import OperationStatus

ALERTING = ("warning", "critical")
# A domain's publish state is the first of these any of its records is in (worst first).
PUBLISH_ORDER = tuple(
    s.value
    for s in (
        PublishStatus.CONFLICT,
        PublishStatus.ERROR,
        PublishStatus.PENDING,
        PublishStatus.PUBLISHED,
    )
)


@dataclass
class WorkspaceCounts:
    servers: dict[str, int] = field(default_factory=dict)
    inboxes: dict[str, int] = field(default_factory=dict)
    domains: int = 0
    domains_verified: int = 0
    open_alerts: int = 0
    operations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DomainState:
    name: str
    inboxes: int
    required: int
    verified: int
    last_verified_at: datetime | None
    first_inbox_id: uuid.UUID | None = None  # whose records page shows the domain's records
    publish: str = "manual"  # the worst of its records' publish states (manual when none)

    @property
    def verification(self) -> str:
        if self.required == 0:
            return "pending"
        return "verified" if self.verified == self.required else "unverified"


def _by_status(
    session: Session,
    model: type[VpsServer] | type[Inbox],
    tenant_id: uuid.UUID,
    ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, dict[str, int]]:
    out: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        select(model.workspace_id, model.status, func.count())
        .where(model.tenant_id == tenant_id, model.workspace_id.in_(ids))
        .group_by(model.workspace_id, model.status)
    )
    for workspace_id, status, count in rows:
        out[workspace_id][status or "unknown"] = count
    return out


def workspace_counts(
    session: Session, tenant_id: uuid.UUID, workspace_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, WorkspaceCounts]:
    ids = list(workspace_ids)
    out = {i: WorkspaceCounts() for i in ids}
    if not ids:
        return out
    for i, counts in _by_status(session, VpsServer, tenant_id, ids).items():
        out[i].servers = counts
    for i, counts in _by_status(session, Inbox, tenant_id, ids).items():
        out[i].inboxes = counts
    active = (OperationStatus.QUEUED, OperationStatus.RUNNING, OperationStatus.FAILED)
    ops = session.execute(
        select(Operation.workspace_id, Operation.status, func.count())
        .where(
            Operation.tenant_id == tenant_id,
            Operation.workspace_id.in_(ids),
            Operation.status.in_([s.value for s in active]),
        )
        .group_by(Operation.workspace_id, Operation.status)
    )
    for workspace_id, status, count in ops:
        out[workspace_id].operations[status] = count
    alerts = session.execute(
        select(VpsServer.workspace_id, func.count())
        .join(HealthCheckState, HealthCheckState.vps_id == VpsServer.id)
        .where(
            VpsServer.tenant_id == tenant_id,
            VpsServer.workspace_id.in_(ids),
            HealthCheckState.tenant_id == tenant_id,
            HealthCheckState.status.in_(ALERTING),
        )
        .group_by(VpsServer.workspace_id)
    )
    for workspace_id, count in alerts:
        out[workspace_id].open_alerts = count
    for workspace_id, states in _domain_states(session, tenant_id, ids).items():
        out[workspace_id].domains = len(states)
        out[workspace_id].domains_verified = sum(s.verification == "verified" for s in states)
    return out


def _domain_states(
    session: Session, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DomainState]]:
    # Per inbox first (one pass over the records, grouped by the indexed inbox_id), then per
    # domain over the inboxes: a count(DISTINCT) over every record cost 3x as much at 60,000.
    required = DnsRecord.required.is_(True)
    verified = case((and_(required, DnsRecord.verification_status == "verified"), 1), else_=0)
    per_inbox = (
        select(
            DnsRecord.inbox_id.label("inbox_id"),
            DnsRecord.domain.label("domain"),
            func.sum(case((required, 1), else_=0)).label("required"),
            func.sum(verified).label("verified"),
            func.max(DnsRecord.last_verified_at).label("last_verified_at"),
            *(
                func.bool_or(DnsRecord.publish_status == state).label(state)
                for state in PUBLISH_ORDER
            ),
        )
        .join(Inbox, Inbox.id == DnsRecord.inbox_id)
        .where(Inbox.tenant_id == tenant_id, Inbox.workspace_id.in_(ids))
        .group_by(DnsRecord.inbox_id, DnsRecord.domain)
        .subquery()
    )
    records = (
        select(
            Inbox.workspace_id.label("workspace_id"),
            per_inbox.c.domain.label("domain"),
            func.count().label("inboxes"),
            func.sum(per_inbox.c.required).cast(Integer).label("required"),
            func.sum(per_inbox.c.verified).cast(Integer).label("verified"),
            func.max(per_inbox.c.last_verified_at).label("last_verified_at"),
            func.min(Inbox.id.cast(String)).label("first_inbox"),
            *(func.bool_or(per_inbox.c[state]).label(state) for state in PUBLISH_ORDER),
        )
        .join(Inbox, Inbox.id == per_inbox.c.inbox_id)
        .group_by(Inbox.workspace_id, per_inbox.c.domain)
        .subquery()
    )
    rows = session.execute(
        select(
            MailDomain.workspace_id,
            MailDomain.name,
            records.c.inboxes,
            records.c.required,
            records.c.verified,
            records.c.last_verified_at,
            records.c.first_inbox,
            *(records.c[state] for state in PUBLISH_ORDER),
        )
        .outerjoin(
            records,
            and_(
                records.c.workspace_id == MailDomain.workspace_id,
                records.c.domain == MailDomain.name,
            ),
        )
        .where(MailDomain.tenant_id == tenant_id, MailDomain.workspace_id.in_(ids))
        .order_by(MailDomain.name)
    )
    out: dict[uuid.UUID, list[DomainState]] = defaultdict(list)
    for workspace_id, name, inboxes, req, ver, last, first, *seen in rows:
        first_id = uuid.UUID(first) if first else None
        publish = next((st for st, on in zip(PUBLISH_ORDER, seen, strict=True) if on), "manual")
        out[workspace_id].append(
            DomainState(name, inboxes or 0, req or 0, ver or 0, last, first_id, publish)
        )
    return out


def domains(session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID) -> list[DomainState]:
    """The workspace's mail domains with how many of their required records verify."""
    return _domain_states(session, tenant_id, [workspace_id]).get(workspace_id, [])
