"""The DNS records of each inbox: generated from its server and domain, verified live.

`generate_for_server` writes the records once a server has its IP and hostname and rewrites
them when either (or the DKIM key) changes; records whose value did not change keep their
status. `verify_inbox` checks one inbox now; `sweep.verify_due` is the periodic job. Both go
through `apply_checks` and `settle_inboxes`, which move an inbox to `ready` (one `dns_verified`
event) or back to `dns_pending` (one `dns_regressed` event) exactly once per transition.
"""

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from database.arrays import uuid_array
from database.models.dns_records import DnsRecord
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.scoping import get_owned
from database.transactions import Transaction
from domain.dns_publishing.states import PUBLISH, PublishStatus
from domain.dns_records.schemas import DnsRecordRead, DnsRecordsView, RecordPublish
from domain.events import catalogue
from domain.events import service as events
from domain.inboxes.states import INBOX, InboxStatus
from domain.mail_domains import service as mail_domains
from kit.aio import run_async
from kit.time import utcnow
from maildns import plan
from maildns.checks import RecordCheck, RecordStatus
from maildns.resolver import Resolver
from maildns.verify import Checker, Target
from settings.dns import DnsSettings

_ORDER = {purpose: i for i, purpose in enumerate(plan.PURPOSE_ORDER)}


def inbox_domain(inbox: Inbox) -> str:
    return inbox.email_address.rpartition("@")[2].lower()


def _sending_ips(servers: Sequence[VpsServer]) -> list[str]:
    """Every address a domain sends from: the servers of all its live inboxes."""
    ips = {str(s.ip_address) for s in servers if s.ip_address and s.status != "deleting"}
    ips |= {str(s.ipv6_address) for s in servers if s.ipv6_address and s.status != "deleting"}
    return sorted(ips, key=lambda ip: (":" in ip, ip))


def _write_plan(
    session: Session,
    inbox: Inbox,
    planned: Sequence[plan.PlannedRecord],
    existing: dict[str, DnsRecord],
    advance: bool,
    new_rows: list[dict[str, Any]],
    now: datetime,
) -> int:
    """Bring one inbox's rows to `planned`. Changed rows are updated in place; new ones are
    appended to `new_rows`, which the caller inserts for all inboxes in one statement (an ORM
    object per record was most of the cost of generating records for a large fleet)."""
    existing = dict(existing)
    changed_required = written = 0
    for p in planned:
        row = existing.pop(p.purpose, None)
        if row is None:
            new_rows.append(
                {
                    "inbox_id": str(inbox.id),
                    "domain": p.domain,
                    "record_type": p.type,
                    "record_name": p.name,
                    "record_value": p.value,
                    "ttl": p.ttl,
                    "purpose": p.purpose,
                    "required": p.required,
                    "verification_status": RecordStatus.PENDING.value,
                    "next_check_at": now.isoformat(),
                }
            )
            written += 1
            changed_required += p.required
            continue
        same = same_value(row, p)
        row.required, row.ttl = p.required, p.ttl
        if same:
            continue
        row.record_type, row.record_name, row.record_value = p.type, p.name, p.value
        row.domain = p.domain
        if row.publish_status != PublishStatus.MANUAL:
            PUBLISH.move(row, PublishStatus.PENDING)  # the new value waits for the next run
            row.publish_detail, row.published_at = None, None
        row.verification_status, row.detail = RecordStatus.PENDING.value, None
        row.last_verified_at, row.next_check_at = None, now
        written += 1
        changed_required += p.required
    for stale in existing.values():
        session.delete(stale)
    if inbox.status == InboxStatus.PENDING_SETUP and advance:
        INBOX.move(inbox, InboxStatus.DNS_PENDING)
    elif inbox.status == InboxStatus.READY and changed_required:
        INBOX.move(inbox, InboxStatus.DNS_PENDING)
        events.record(
            session,
            tenant_id=inbox.tenant_id,
            workspace_id=inbox.workspace_id,
            type=catalogue.DNS_REGRESSED,
            message=f"the DNS records of {inbox.email_address} changed; publish the new values",
            subject_type="inbox",
            subject_id=inbox.id,
            data={"email_address": inbox.email_address, "reason": "records_changed"},
        )
    return written


class StoredValue(Protocol):
    """What a stored record is compared on (a DnsRecord or generation's row)."""

    @property
    def record_type(self) -> str: ...

    @property
    def record_name(self) -> str: ...

    @property
    def record_value(self) -> str: ...

    @property
    def domain(self) -> str: ...


def same_value(row: StoredValue, p: plan.PlannedRecord) -> bool:
    """Whether the stored record already says what the plan does (TTL and required aside)."""
    return (row.record_type, row.record_name, row.record_value, row.domain) == (
        p.type, p.name, p.value, p.domain
    )  # fmt: skip


class DomainKeys(Protocol):
    """What record planning reads of a mail domain (a MailDomain row or generation's tuple)."""

    @property
    def name(self) -> str: ...

    @property
    def dkim_selector(self) -> str: ...

    @property
    def dkim_public_key(self) -> str: ...

    @property
    def dkim_algorithm(self) -> str: ...


def planned_records(
    domain: DomainKeys,
    hostname: str,
    ip: str,
    ipv6: str | None,
    spf_ips: Sequence[str],
    settings: DnsSettings,
) -> list[plan.PlannedRecord]:
    """One inbox's records on its server: the one call both generation paths make."""
    return plan.plan(
        domain=domain.name,
        hostname=hostname,
        ip=ip,
        ipv6=ipv6,
        spf_ips=spf_ips,
        dkim_selector=domain.dkim_selector,
        dkim_public_key=domain.dkim_public_key,
        dkim_algorithm=domain.dkim_algorithm,
        dmarc_rua=settings.dns_dmarc_rua,
        tlsrpt_rua=settings.dns_tlsrpt_rua,
        ttl=settings.dns_record_ttl,
    )


def generate_for_server(
    session: Session,
    server: VpsServer,
    *,
    settings: DnsSettings,
    applied: Collection[str] | None = None,
) -> int:
    """Write the records of every inbox on `server` (and refresh the SPF of other inboxes of
    the same domains). Returns how many records were created or changed.

    An inbox on `server` still `pending_setup` moves to `dns_pending` only when its mailbox
    exists: when `applied` (lower-cased addresses a finished run reported) names it, or, with
    `applied` unset, always (a caller that knows the mailboxes exist)."""
    if server.ip_address is None or not server.hostname:
        return 0
    inboxes = session.scalars(
        select(Inbox).where(
            Inbox.vps_id == server.id,
            Inbox.tenant_id == server.tenant_id,
            Inbox.status != "deleting",
        )
    ).all()
    workspace = session.get_one(Workspace, server.workspace_id)
    names = sorted({inbox_domain(i) for i in inboxes})
    if not names:
        return 0
    domains = {
        d.name: d
        for d in session.scalars(
            select(MailDomain).where(
                MailDomain.workspace_id == workspace.id, MailDomain.name.in_(names)
            )
        )
    }
    for name in names:
        if name not in domains:
            domains[name] = mail_domains.ensure_domain(session, workspace, name, settings=settings)
    # Every live inbox of these domains in the workspace: the SPF value lists all their servers.
    by_domain: dict[str, list[tuple[Inbox, VpsServer]]] = {}
    for inbox, host in session.execute(
        select(Inbox, VpsServer)
        .join(VpsServer, Inbox.vps_id == VpsServer.id)
        .where(
            Inbox.workspace_id == workspace.id,
            Inbox.status != "deleting",
            func.lower(func.split_part(Inbox.email_address, "@", 2)).in_(names),
        )
    ).all():
        by_domain.setdefault(inbox_domain(inbox), []).append((inbox, host))
    inbox_ids = [i.id for pairs in by_domain.values() for i, _ in pairs]
    existing: dict[uuid.UUID, dict[str, DnsRecord]] = {}
    for record in session.scalars(select(DnsRecord).where(DnsRecord.inbox_id.in_(inbox_ids))):
        existing.setdefault(record.inbox_id, {})[record.purpose] = record
    written = 0
    new_rows: list[dict[str, Any]] = []
    now = utcnow()
    for name, pairs in by_domain.items():
        domain = domains[name]
        spf_ips = _sending_ips([host for _, host in pairs])
        for inbox, host in pairs:
            if host.ip_address is None:
                continue
            planned = planned_records(
                domain,
                host.hostname,
                str(host.ip_address),
                str(host.ipv6_address) if host.ipv6_address else None,
                spf_ips,
                settings,
            )
            advance = inbox.vps_id == server.id and (
                applied is None or inbox.email_address.lower() in applied
            )
            written += _write_plan(
                session, inbox, planned, existing.get(inbox.id, {}), advance, new_rows, now
            )
    session.flush()  # stale rows go before their replacements (one row per inbox and purpose)
    _insert(session, new_rows)
    return written


_COLUMNS = (
    ("inbox_id", "uuid"), ("domain", "text"), ("record_type", "text"), ("record_name", "text"),
    ("record_value", "text"), ("ttl", "int"), ("purpose", "text"), ("required", "bool"),
    ("verification_status", "text"), ("next_check_at", "timestamptz"),
)  # fmt: skip
_INSERT = text(
    "INSERT INTO dns_records (" + ", ".join(c for c, _ in _COLUMNS) + ") "
    "SELECT " + ", ".join(f"v.{c}" for c, _ in _COLUMNS) + " "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v("
    + ", ".join(f"{c} {t}" for c, t in _COLUMNS)
    + ")"
)


def _insert(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New records in one statement, from one JSON document (an ORM object per record, or an
    executemany, costs a round of work per row; psycopg writes arrays element by element in
    Python). Ids and the other columns come from the table's server defaults."""
    if rows:
        session.execute(_INSERT, {"rows": json.dumps(rows)})


def _get_inbox(session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> Inbox:
    return get_owned(session, Inbox, tenant_id, inbox_id, noun="inbox", field="inbox_id")


def _view(session: Session, inbox: Inbox) -> DnsRecordsView:
    rows = sorted(
        session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox.id)).all(),
        key=lambda r: (_ORDER.get(r.purpose, 99), r.record_name),
    )
    records = [
        DnsRecordRead(
            type=r.record_type,
            name=r.record_name,
            value=r.record_value,
            status=r.verification_status or RecordStatus.PENDING.value,
            detail=r.detail,
            required=r.required,
            last_verified_at=r.last_verified_at,
            last_checked_at=r.last_checked_at,
            purpose=r.purpose,
            domain=r.domain,
            ttl=r.ttl,
            publish=RecordPublish(
                status=r.publish_status, detail=r.publish_detail, published_at=r.published_at
            ),
            zone_line=plan.PlannedRecord(
                r.purpose,
                r.record_type,
                r.record_name,
                r.record_value,
                r.required,
                r.ttl or 3600,
                r.domain,
            ).zone_line(),
        )
        for r in rows
    ]
    required = [r for r in records if r.required]
    all_verified = bool(required) and all(r.status == RecordStatus.VERIFIED for r in required)
    return DnsRecordsView(records=records, all_verified=all_verified)


def list_for_inbox(session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> DnsRecordsView:
    return _view(session, _get_inbox(session, tenant_id, inbox_id))


def target_of(record: DnsRecord | Any, ip: str, hostname: str, ipv6: str | None) -> Target:
    return Target(
        record.purpose, record.record_type, record.record_name, record.record_value,
        record.domain, ip, hostname, ipv6
    )  # fmt: skip


async def check_targets(targets: Sequence[Target], settings: DnsSettings) -> list[RecordCheck]:
    async with Resolver.from_settings(settings) as resolver:
        return await Checker(resolver).check_all(targets)


def verify_inbox(
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID,
    transaction: Transaction,
    settings: DnsSettings,
) -> DnsRecordsView:
    """RecordCheck the inbox's records now: read them in one short transaction, look them up with no
    transaction open (bounded timeouts), write the results in another, in the lock order
    (inbox, then records). `transaction(fn)` runs `fn(session)` in a committed transaction."""

    def read(session: Session) -> list[tuple[uuid.UUID, str, str | None, Target]] | None:
        inbox = _get_inbox(session, tenant_id, inbox_id)
        server = session.get(VpsServer, inbox.vps_id) if inbox.vps_id else None
        if server is None or server.ip_address is None:
            return None
        ip = str(server.ip_address)
        v6 = str(server.ipv6_address) if server.ipv6_address else None
        rows = session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox.id)).all()
        return [
            (r.id, r.record_value, r.verification_status, target_of(r, ip, server.hostname, v6))
            for r in rows
        ]

    claimed = transaction(read)
    if claimed:
        results = run_async(check_targets([t for *_, t in claimed], settings))

        def write(session: Session) -> None:
            lock_inboxes(session, [inbox_id])
            apply_checks(session, [(i, v, p) for i, v, p, _ in claimed], results, settings=settings)
            settle_inboxes(session, [inbox_id])

        transaction(write)
    return transaction(lambda session: _view(session, _get_inbox(session, tenant_id, inbox_id)))


def apply_checks(
    session: Session,
    claimed: Sequence[tuple[uuid.UUID, str, str | None]],
    results: Sequence[RecordCheck],
    now: datetime | None = None,
    *,
    settings: DnsSettings,
) -> None:
    """Write check results in one statement. An error (timeout, SERVFAIL) never demotes a
    verified record: it keeps its status and says the last check could not conclude. A row
    whose value was regenerated since it was claimed is left alone (checked again soon)."""
    if not claimed:
        return
    now = now or utcnow()
    retry = now + timedelta(seconds=settings.dns_verify_interval_seconds)
    reverify = now + timedelta(seconds=settings.dns_reverify_seconds)
    rows, ids = [], []
    for (record_id, value, previous), check in zip(claimed, results, strict=True):
        status, detail = check.status, check.detail
        if status is RecordStatus.ERROR and previous == RecordStatus.VERIFIED:
            status = RecordStatus.VERIFIED
            detail = f"kept verified; the last check could not conclude: {check.detail}"
        ids.append(record_id)
        rows.append(
            {"id": str(record_id), "value": value, "status": status.value,
             "detail": detail[:4000], "ok": check.verified}
        )  # fmt: skip
    # One JSON document for the whole batch: psycopg writes text arrays element by element in
    # Python (quoting and escaping each), which cost more than the UPDATE itself.
    session.execute(
        text(
            """
            UPDATE dns_records r
            SET verification_status = v.status, detail = v.detail, last_checked_at = :now,
                last_verified_at = CASE WHEN v.ok THEN CAST(:now AS timestamptz)
                                        ELSE r.last_verified_at END,
                next_check_at = CASE WHEN v.ok THEN CAST(:reverify AS timestamptz)
                                     ELSE CAST(:retry AS timestamptz) END
            FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                 AS v(id uuid, value text, status text, detail text, ok boolean)
            WHERE r.id = v.id AND r.record_value = v.value
            """
        ),
        {"now": now, "retry": retry, "reverify": reverify, "rows": json.dumps(rows)},
    )
    # The fast path: a record we published that does not verify yet is checked again at the
    # next backoff step since its publication (15 s, 1 min, 2 min, 5 min), not a whole
    # interval later, so propagation is seen as soon as it happens.
    steps = _backoff(settings.dns_publish_backoff_seconds)
    if steps:
        marks = [float(sum(steps[: i + 1])) for i in range(len(steps))]
        session.execute(
            text(
                """
                UPDATE dns_records r
                SET next_check_at = GREATEST(
                    CAST(:now AS timestamptz) + interval '1 second',
                    r.published_at + make_interval(secs => (
                        SELECT min(m) FROM unnest(CAST(:marks AS float8[])) AS m
                        WHERE m > EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - r.published_at))
                    )))
                WHERE r.id = ANY(CAST(:ids AS uuid[])) AND r.published_at IS NOT NULL
                  AND r.publish_status = :published AND r.verification_status <> 'verified'
                  AND EXTRACT(EPOCH FROM (CAST(:now AS timestamptz) - r.published_at)) < :last
                """
            ),
            {"now": now, "marks": marks, "ids": uuid_array(ids), "last": marks[-1],
             "published": PublishStatus.PUBLISHED.value},
        )  # fmt: skip


def _backoff(text_value: str) -> list[float]:
    out = []
    for part in text_value.split(","):
        try:
            out.append(max(1.0, float(part)))
        except ValueError:
            continue
    return out


_NOT_VERIFIED = """EXISTS (SELECT 1 FROM dns_records r WHERE r.inbox_id = i.id AND r.required
                   AND r.verification_status <> 'verified')"""


@dataclass(frozen=True)
class Settled:
    ready: int
    regressed: int


def lock_inboxes(session: Session, inbox_ids: Sequence[uuid.UUID]) -> None:
    """Lock inboxes in id order (`FOR NO KEY UPDATE`), before touching their records: the
    lock order every writer of inboxes follows."""
    if inbox_ids:
        # One uuid[] parameter, not an IN list: a sweep batch locks thousands of inboxes, and
        # rendering and adapting a bound parameter per id cost more than the lock.
        session.execute(
            text(
                "SELECT i.id FROM inboxes i WHERE i.id = ANY(CAST(:ids AS uuid[])) "
                "ORDER BY i.id FOR NO KEY UPDATE"
            ),
            {"ids": uuid_array(inbox_ids)},
        ).all()


def settle_inboxes(session: Session, inbox_ids: Sequence[uuid.UUID]) -> Settled:
    """Promote inboxes whose required records are all verified, demote ready ones that are no
    longer. Each UPDATE re-checks the status under the row lock, so concurrent sweeps record
    each transition's event once."""
    if not inbox_ids:
        return Settled(0, 0)
    ids = list(inbox_ids)
    ready = session.execute(
        text(
            f"""UPDATE inboxes i SET status = :target, updated_at = now()
            WHERE i.id = ANY(CAST(:ids AS uuid[])) AND i.status = :source
              AND EXISTS (SELECT 1 FROM dns_records r WHERE r.inbox_id = i.id AND r.required)
              AND NOT {_NOT_VERIFIED}
            RETURNING i.id, i.tenant_id, i.workspace_id, i.email_address"""  # noqa: S608
        ),
        {"ids": uuid_array(ids), **INBOX.edge(InboxStatus.DNS_PENDING, InboxStatus.READY)},
    ).all()
    regressed = session.execute(
        text(
            f"""UPDATE inboxes i SET status = :target, updated_at = now()
            WHERE i.id = ANY(CAST(:ids AS uuid[])) AND i.status = :source AND {_NOT_VERIFIED}
            RETURNING i.id, i.tenant_id, i.workspace_id, i.email_address"""  # noqa: S608
        ),
        {"ids": uuid_array(ids), **INBOX.edge(InboxStatus.READY, InboxStatus.DNS_PENDING)},
    ).all()
    failing: dict[uuid.UUID, list[dict[str, str | None]]] = {}
    if regressed:
        for inbox_id, purpose, status, detail in session.execute(
            select(DnsRecord.inbox_id, DnsRecord.purpose, DnsRecord.verification_status,
                   DnsRecord.detail)
            .where(DnsRecord.inbox_id.in_([r.id for r in regressed]), DnsRecord.required,
                   DnsRecord.verification_status != RecordStatus.VERIFIED.value)
        ):  # fmt: skip
            failing.setdefault(inbox_id, []).append(
                {"purpose": purpose, "status": status, "detail": detail}
            )
    batch: list[events.NewEvent] = []
    for row in ready:
        about = {"email_address": row.email_address}
        batch.append(events.NewEvent(
            row.tenant_id, catalogue.DNS_VERIFIED,
            f"all DNS records of {row.email_address} are verified; the inbox is ready",
            row.workspace_id, "inbox", row.id, about,
        ))  # fmt: skip
        batch.append(events.NewEvent(
            row.tenant_id, catalogue.INBOX_READY, f"inbox {row.email_address} is ready",
            row.workspace_id, "inbox", row.id, about,
        ))  # fmt: skip
    for row in regressed:
        bad = failing.get(row.id, [])
        batch.append(events.NewEvent(
            row.tenant_id, catalogue.DNS_REGRESSED,
            f"DNS of {row.email_address} no longer verifies: "
            + ", ".join(f"{b['purpose']} {b['status']}" for b in bad),
            row.workspace_id, "inbox", row.id,
            {"email_address": row.email_address, "records": bad},
        ))  # fmt: skip
    events.record_many(session, batch)
    return Settled(len(ready), len(regressed))
