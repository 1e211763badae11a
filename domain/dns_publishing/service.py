"""DNS connections, the workspace default and per-domain override, and each record's publish
status. Requests only write desired state and queue an `up`: the stack's DNS record resources
do the publishing (a request never talks to a DNS service), and `record_outcomes` writes back
what the run said. `reconcile` moves a workspace's records between `manual` and `pending` when
the connection that applies to their domain changes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dns.exception
import dns.name
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from database.models.dns_connections import DnsConnection
from database.models.dns_records import DnsRecord
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.workspaces import Workspace
from database.pagination import Parent, paginate
from database.scoping import get_owned
from dnspublish import lexicon
from dnspublish.rfc2136 import check_secret, parse_server
from domain.dns_publishing.schemas import (
    DnsConnectionRead,
    DnsConnectionUpdate,
    DomainRead,
    DomainUpdate,
    LexiconCreate,
    PublishSummary,
    Rfc2136Create,
    TokenCreate,
    VerificationSummary,
    WorkspaceDnsUpdate,
)
from domain.dns_publishing.states import PUBLISH, PublishStatus
from domain.operations import service as operations
from domain.workspaces import service as workspaces
from kit.errors import Conflict, NotFound, ValidationFailed
from kit.time import utcnow
from settings.dns import DnsSettings
from settings.operations import OperationSettings

MANUAL = "manual"
# Worst first: the status a domain's summary shows.
SEVERITY = ("error", "conflict", "pending", "published", "manual")


# Connections --------------------------------------------------------------------------------


def _check_server(server: str) -> None:
    try:
        host, port = parse_server(server)
    except ValueError:
        raise ValidationFailed("server must be host[:port]", field="server") from None
    if not host or not 1 <= port <= 65535:
        raise ValidationFailed("server must be host[:port] with a port 1-65535", field="server")


def _check_tsig(secret: str | None, key_name: str | None) -> None:
    if secret is not None:
        try:
            check_secret(secret)
        except ValueError as exc:
            raise ValidationFailed(f"tsig_secret {exc}", field="tsig_secret") from None
    if key_name is not None:
        try:
            dns.name.from_text(key_name)
        except dns.exception.DNSException:
            raise ValidationFailed(
                "tsig_key_name must be a DNS name", field="tsig_key_name"
            ) from None
        if " " in key_name:
            raise ValidationFailed("tsig_key_name must be a DNS name", field="tsig_key_name")


def _check_lexicon(provider: str, options: dict[str, str]) -> None:
    try:
        lexicon.check(provider, options)
    except lexicon.OptionProblem as exc:
        field = "provider" if exc.option == "provider" else f"options.{exc.option}"
        raise ValidationFailed(str(exc), field=field) from None


def credential_names(connection: DnsConnection) -> list[str]:
    """Which credentials are set, from the plain settings (never decrypting)."""
    if connection.kind == "rfc2136":
        return ["tsig_secret"]
    if connection.kind in ("cloudflare", "hetzner"):
        return ["api_token"]
    if connection.kind == "lexicon":
        return sorted(connection.settings.get("options", []))
    return []


def view(connection: DnsConnection) -> DnsConnectionRead:
    return DnsConnectionRead(
        id=connection.id,
        workspace_id=connection.workspace_id,
        name=connection.name,
        kind=connection.kind,
        settings=dict(connection.settings),
        credentials=credential_names(connection),
        created_at=connection.created_at or utcnow(),
        updated_at=connection.updated_at or utcnow(),
    )


def create_connection(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, data: Any
) -> DnsConnection:
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    taken = session.scalar(
        select(func.count()).where(
            DnsConnection.workspace_id == workspace.id, DnsConnection.name == data.name
        )
    )
    if taken:
        raise Conflict(f"a DNS connection named {data.name!r} already exists", field="name")
    settings: dict[str, Any] = {}
    credentials: dict[str, str] = {}
    if isinstance(data, Rfc2136Create):
        _check_server(data.server)
        _check_tsig(data.tsig_secret, data.tsig_key_name)
        settings = {
            "server": data.server,
            "tsig_key_name": data.tsig_key_name,
            "tsig_algorithm": data.tsig_algorithm,
        }
        credentials = {"tsig_secret": data.tsig_secret}
    elif isinstance(data, LexiconCreate):
        _check_lexicon(data.provider, data.options)
        settings = {"provider": data.provider, "options": sorted(data.options)}
        credentials = dict(data.options)
    elif isinstance(data, TokenCreate):
        credentials = {"api_token": data.api_token}
    connection = DnsConnection(
        tenant_id=tenant_id,
        workspace_id=workspace.id,
        name=data.name,
        kind=data.kind,
        settings=settings,
        credentials_encrypted=json.dumps(credentials),
    )
    session.add(connection)
    session.flush()
    session.refresh(connection)
    return connection


def get_connection(
    session: Session, tenant_id: uuid.UUID, connection_id: uuid.UUID, workspace_id: uuid.UUID
) -> DnsConnection:
    connection = get_owned(
        session,
        DnsConnection,
        tenant_id,
        connection_id,
        noun="DNS connection",
        field="connection_id",
    )
    if connection.workspace_id != workspace_id:
        raise NotFound(f"DNS connection {connection_id} not found", field="connection_id")
    return connection


def list_connections(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[Sequence[DnsConnection], int]:
    return paginate(
        session,
        DnsConnection,
        [DnsConnection.tenant_id == tenant_id, DnsConnection.workspace_id == workspace_id],
        order_by=[DnsConnection.created_at, DnsConnection.id],
        limit=limit,
        offset=offset,
        parent=Parent(Workspace, tenant_id, workspace_id, noun="workspace", field="workspace_id"),
    )


_KIND_FIELDS = {
    "rfc2136": {"server", "tsig_key_name", "tsig_algorithm", "tsig_secret"},
    "lexicon": {"options"},
    "cloudflare": {"api_token"},
    "hetzner": {"api_token"},
    "manual": set(),
}


def update_connection(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    connection_id: uuid.UUID,
    data: DnsConnectionUpdate,
    *,
    settings: OperationSettings,
) -> DnsConnection:
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    connection = get_connection(session, tenant_id, connection_id, workspace.id)
    given = data.model_fields_set
    for name in sorted(given - {"name"}):
        if name not in _KIND_FIELDS[connection.kind]:
            raise ValidationFailed(
                f"{name} is not a setting of a {connection.kind} connection", field=name
            )
    if data.name is not None and data.name != connection.name:
        clash = session.scalar(
            select(func.count()).where(
                DnsConnection.workspace_id == workspace.id, DnsConnection.name == data.name
            )
        )
        if clash:
            raise Conflict(f"a DNS connection named {data.name!r} already exists", field="name")
        connection.name = data.name
    if given - {"name"}:
        plain = dict(connection.settings)
        creds: dict[str, str] = json.loads(connection.credentials_encrypted or "{}")
        if data.server is not None:
            _check_server(data.server)
            plain["server"] = data.server
        if data.tsig_key_name is not None:
            _check_tsig(None, data.tsig_key_name)
            plain["tsig_key_name"] = data.tsig_key_name
        if data.tsig_algorithm is not None:
            plain["tsig_algorithm"] = data.tsig_algorithm
        if data.tsig_secret is not None:
            _check_tsig(data.tsig_secret, None)
            creds["tsig_secret"] = data.tsig_secret
        if data.api_token is not None:
            creds["api_token"] = data.api_token
        if data.options is not None:
            _check_lexicon(str(plain.get("provider", "")), data.options)
            creds = dict(data.options)
            plain["options"] = sorted(data.options)
        connection.settings = plain
        connection.credentials_encrypted = json.dumps(creds)
        # Publish again through the new settings.
        if reconcile(session, workspace, republish={connection.id}):
            operations.enqueue(
                session, workspace, "up", reason="DNS connection changed", settings=settings
            )
    session.flush()
    session.refresh(connection)
    return connection


def delete_connection(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, connection_id: uuid.UUID
) -> None:
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    connection = get_connection(session, tenant_id, connection_id, workspace.id)
    users = session.scalars(
        select(MailDomain.name).where(
            MailDomain.workspace_id == workspace.id, MailDomain.dns_connection_id == connection.id
        )
    ).all()
    if workspace.dns_connection_id == connection.id or users:
        what = ", ".join(users) if users else "the workspace (its default connection)"
        raise Conflict(
            f"DNS connection {connection.name!r} is in use by {what}; point them elsewhere first",
            field="connection_id",
            domains=list(users),
        )
    session.delete(connection)
    session.flush()


# The default and the override -----------------------------------------------------------------


def effective(domain: MailDomain, workspace: Workspace) -> uuid.UUID | None:
    return domain.dns_connection_id or workspace.dns_connection_id


def set_default(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    data: WorkspaceDnsUpdate,
    *,
    settings: OperationSettings,
) -> Workspace:
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    if data.dns_connection_id is not None:
        _connection_of(session, workspace, data.dns_connection_id)
    if workspace.dns_connection_id != data.dns_connection_id:
        workspace.dns_connection_id = data.dns_connection_id
        session.flush()
        if reconcile(session, workspace):
            operations.enqueue(
                session, workspace, "up", reason="DNS connection changed", settings=settings
            )
    return workspace


def _connection_of(session: Session, workspace: Workspace, connection_id: uuid.UUID) -> None:
    found = session.scalar(
        select(func.count()).where(
            DnsConnection.id == connection_id,
            DnsConnection.workspace_id == workspace.id,
            DnsConnection.tenant_id == workspace.tenant_id,
        )
    )
    if not found:
        raise ValidationFailed(
            f"no DNS connection {connection_id} in this workspace", field="dns_connection_id"
        )


def _records_by_domain(
    session: Session, workspace: Workspace, names: Iterable[str] | None = None
) -> dict[str, list[DnsRecord]]:
    stmt = (
        select(DnsRecord)
        .join(Inbox, Inbox.id == DnsRecord.inbox_id)
        .where(Inbox.workspace_id == workspace.id, Inbox.tenant_id == workspace.tenant_id)
        .order_by(DnsRecord.inbox_id, DnsRecord.id)
    )
    if names is not None:
        stmt = stmt.where(DnsRecord.domain.in_(list(names)))
    out: dict[str, list[DnsRecord]] = {}
    for record in session.scalars(stmt):
        out.setdefault(record.domain, []).append(record)
    return out


def reconcile(
    session: Session, workspace: Workspace, *, republish: set[uuid.UUID] | None = None
) -> bool:
    """Move the workspace's records to `pending` where a publishing connection applies to
    their domain (every record of a domain using a connection in `republish`), to `manual`
    where none does. True when a run is needed. The caller holds the workspace; inboxes are
    locked before their records (the lock order)."""
    kinds = dict(
        session.execute(
            select(DnsConnection.id, DnsConnection.kind).where(
                DnsConnection.workspace_id == workspace.id
            )
        ).all()
    )
    if not kinds:
        # No connection: every record is manual already (one in use cannot be deleted, and
        # unsetting the last one made them manual). The common case costs one query.
        return False
    domains = session.scalars(
        select(MailDomain).where(
            MailDomain.workspace_id == workspace.id, MailDomain.tenant_id == workspace.tenant_id
        )
    ).all()
    records = _records_by_domain(session, workspace)
    inbox_ids = sorted({r.inbox_id for rows in records.values() for r in rows})
    from domain.dns_records.service import lock_inboxes

    lock_inboxes(session, inbox_ids)
    needed = False
    for domain in domains:
        connection_id = effective(domain, workspace)
        publishing = connection_id is not None and kinds.get(connection_id, MANUAL) != MANUAL
        for record in records.get(domain.name, []):
            if publishing:
                again = republish is not None and connection_id in republish
                if record.publish_status == PublishStatus.MANUAL or again:
                    changed = PUBLISH.move(record, PublishStatus.PENDING)
                    needed = needed or changed or again
            elif record.publish_status != PublishStatus.MANUAL:
                PUBLISH.move(record, PublishStatus.MANUAL)
                record.publish_detail = "no DNS connection: publish it by hand"
                needed = True
    session.flush()
    return needed


def list_domains(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID
) -> list[DomainRead]:
    workspace = workspaces.get(session, tenant_id, workspace_id)
    domains = session.scalars(
        select(MailDomain)
        .where(MailDomain.workspace_id == workspace.id, MailDomain.tenant_id == tenant_id)
        .order_by(MailDomain.name)
    ).all()
    records = _records_by_domain(session, workspace)
    return [_domain_view(d, workspace, records.get(d.name, [])) for d in domains]


def _domain_view(domain: MailDomain, workspace: Workspace, rows: list[DnsRecord]) -> DomainRead:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.publish_status] = counts.get(r.publish_status, 0) + 1
    worst = next((s for s in SEVERITY if counts.get(s)), MANUAL)
    required = [r for r in rows if r.required]
    verified = sum(1 for r in required if r.verification_status == "verified")
    return DomainRead(
        id=domain.id,
        workspace_id=domain.workspace_id,
        name=domain.name,
        dns_connection_id=domain.dns_connection_id,
        effective_connection_id=effective(domain, workspace),
        zone=domain.zone,
        mx_policy=domain.mx_policy,
        publish=PublishSummary(status=worst, counts=counts),
        verification=VerificationSummary(
            verified=verified,
            total=len(required),
            all_verified=bool(required) and verified == len(required),
        ),
    )


def update_domain(
    session: Session,
    tenant_id: uuid.UUID,
    domain_id: uuid.UUID,
    data: DomainUpdate,
    *,
    settings: OperationSettings,
) -> DomainRead:
    found = get_owned(
        session, MailDomain, tenant_id, domain_id, noun="mail domain", field="domain_id"
    )
    workspace = workspaces.lock(session, tenant_id, found.workspace_id)
    domain = session.get_one(MailDomain, domain_id, with_for_update={"key_share": True})
    given = data.model_fields_set
    before = (effective(domain, workspace), domain.zone, domain.mx_policy)
    if "dns_connection_id" in given:
        if data.dns_connection_id is not None:
            _connection_of(session, workspace, data.dns_connection_id)
        domain.dns_connection_id = data.dns_connection_id
    if "zone" in given:
        zone = (data.zone or "").rstrip(".").lower() or None
        if zone is not None and not (domain.name == zone or domain.name.endswith("." + zone)):
            raise ValidationFailed(f"{domain.name} is not inside the zone {zone}", field="zone")
        domain.zone = zone
    if data.mx_policy is not None:
        domain.mx_policy = data.mx_policy
    session.flush()
    if before != (effective(domain, workspace), domain.zone, domain.mx_policy):
        connection_id = effective(domain, workspace)
        again = {connection_id} if connection_id and before[0] == connection_id else None
        if reconcile(session, workspace, republish=again):
            operations.enqueue(
                session,
                workspace,
                "up",
                reason=f"DNS settings of {domain.name} changed",
                settings=settings,
            )
    records = _records_by_domain(session, workspace, [domain.name])
    return _domain_view(domain, workspace, records.get(domain.name, []))


def request_publish(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    domain_name: str,
    *,
    settings: OperationSettings,
) -> uuid.UUID | None:
    """Publish the domain's records again (`penguinmails dns publish`): its records become
    `pending` and an `up` is queued; the operation's id, or None when no connection applies."""
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    domain = session.scalars(
        select(MailDomain).where(
            MailDomain.workspace_id == workspace.id, MailDomain.name == domain_name
        )
    ).first()
    if domain is None:
        raise NotFound(f"no mail domain {domain_name} in this workspace", field="domain")
    connection_id = effective(domain, workspace)
    if connection_id is None:
        return None
    reconcile(session, workspace, republish={connection_id})
    op = operations.enqueue(
        session, workspace, "up", reason=f"publish DNS records of {domain_name}", settings=settings
    )
    return op.id


# What a run said ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One DNS record resource's result, as the run reported it."""

    domain: str
    purpose: str
    value: str  # as the dns_records row holds it
    status: str
    detail: str
    zone: str | None
    published_at: datetime | None


def record_outcomes(
    session: Session,
    workspace: Workspace,
    outcomes: Sequence[Outcome],
    *,
    settings: DnsSettings,
) -> Written:
    """Write each outcome onto the workspace's matching records; a published record is checked
    again within seconds (`dns_publish_first_check_seconds`), then with backoff (`apply_checks`).
    Returns the domains written and, per domain, the records that newly became `error` or
    `conflict`. The caller holds the workspace."""
    if not outcomes:
        return Written([], {})
    by_key = {(o.domain, o.purpose, o.value): o for o in outcomes}
    records = _records_by_domain(session, workspace, {o.domain for o in outcomes})
    from domain.dns_records.service import lock_inboxes

    lock_inboxes(session, sorted({r.inbox_id for rows in records.values() for r in rows}))
    now = utcnow()
    first = now + timedelta(seconds=settings.dns_publish_first_check_seconds)
    written, failed, zones = _write_all(records, by_key, now, first)
    _keep_zones(session, workspace, zones)
    session.flush()
    return Written(
        sorted(written),
        {d: sorted(r.values(), key=lambda x: x["purpose"]) for d, r in failed.items()},
    )


def _write_all(
    records: dict[str, list[DnsRecord]],
    by_key: dict[tuple[str, str, str], Outcome],
    now: datetime,
    first: datetime,
) -> tuple[set[str], dict[str, dict[str, dict[str, str]]], dict[str, str]]:
    """Write each record's outcome; returns the domains written, the new failures per domain
    and purpose, and the zone the run found per domain."""
    written: set[str] = set()
    failed: dict[str, dict[str, dict[str, str]]] = {}
    zones: dict[str, str] = {}
    for domain, rows in records.items():
        for record in rows:
            outcome = by_key.get((domain, record.purpose, record.record_value))
            if outcome is None or record.publish_status == PublishStatus.MANUAL:
                continue  # not in this run, or the customer publishes it by hand
            failure = _write_outcome(record, outcome, now, first)
            if failure is not None:
                failed.setdefault(domain, {})[record.purpose] = failure
            written.add(domain)
            if outcome.zone and record.purpose != "ptr":
                # A PTR lives in the reverse zone, never the domain's own.
                zones[domain] = outcome.zone
    return written, failed, zones


def _write_outcome(
    record: DnsRecord, outcome: Outcome, now: datetime, first: datetime
) -> dict[str, str] | None:
    """Move `record` to the outcome's status and detail; returns the failure to report when it
    newly became `error` or `conflict` (a record already there is reported once, not again)."""
    target = PublishStatus(outcome.status)
    failure = None
    if record.publish_status != target:
        PUBLISH.move(record, PublishStatus.PENDING)
        PUBLISH.move(record, target)
        if target in (PublishStatus.ERROR, PublishStatus.CONFLICT):
            failure = {
                "purpose": record.purpose,
                "status": target.value,
                "detail": outcome.detail[:1000],
            }
    record.publish_detail = outcome.detail[:4000]
    if target == PublishStatus.PUBLISHED:
        _start_fast_checks(record, outcome, now, first)
    return failure


def _start_fast_checks(record: DnsRecord, outcome: Outcome, now: datetime, first: datetime) -> None:
    """A record not yet verified counts as published from this run and is checked again by
    `first`; a verified one keeps its date and schedule."""
    if record.published_at is None or record.verification_status != "verified":
        record.published_at = outcome.published_at or now
    if record.verification_status != "verified":
        record.next_check_at = min(record.next_check_at or first, first)


def _keep_zones(session: Session, workspace: Workspace, zones: dict[str, str]) -> None:
    """Remember the zone a run found for each domain that has none yet."""
    for row in session.scalars(
        select(MailDomain).where(
            MailDomain.workspace_id == workspace.id, MailDomain.name.in_(list(zones))
        )
    ):
        if row.zone is None:
            row.zone = zones[row.name]


@dataclass(frozen=True)
class Written:
    domains: list[str]
    failed: dict[str, list[dict[str, str]]]


def unpublished(session: Session, workspace: Workspace) -> bool:
    """Records still waiting for a run to publish them."""
    return bool(
        session.scalar(
            select(func.count())
            .select_from(DnsRecord)
            .join(Inbox, Inbox.id == DnsRecord.inbox_id)
            .where(
                Inbox.workspace_id == workspace.id,
                Inbox.status != "deleting",
                DnsRecord.publish_status == PublishStatus.PENDING.value,
            )
        )
    )
