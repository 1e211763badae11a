"""Record generation for many servers at once, set-based.

`generate_for_servers` writes exactly the rows that calling `service.generate_for_server` for
each server in turn writes (`tests/domain/dns_records/test_generation.py` holds them equal):
the records of every live inbox on the servers, and of every other live inbox of their
domains (the SPF lists all of a domain's servers). It reads plain columns (no ORM object per
row), works out the difference from the stored rows in Python, and writes it in a few
statements: new rows by COPY straight into `dns_records`, changed rows by COPY into a
temporary table and one `UPDATE ... FROM` it, stale rows by one `DELETE`. Unchanged rows are
not touched. Mail domains that do not exist yet are created by `mail_domains.ensure_domain`,
as before (it makes the DKIM key pair and stores the private half encrypted).

Per-server generation cost an ORM object per record and a round of statements per server:
most of the time of a run that reports a large fleet."""

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.orm import Session

from database.arrays import uuid_array
from database.models.dns_records import DnsRecord
from database.models.inboxes import Inbox
from database.models.mail_domains import MailDomain
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from domain.dns_publishing.states import PublishStatus
from domain.dns_records.service import planned_records, same_value
from domain.events import catalogue
from domain.events import service as events
from domain.inboxes.states import INBOX, InboxStatus
from domain.mail_domains import service as mail_domains
from kit.time import utcnow
from maildns.checks import RecordStatus
from settings.dns import DnsSettings

_INSERT_COLUMNS = (
    "inbox_id", "domain", "record_type", "record_name", "record_value", "ttl", "purpose",
    "required", "verification_status", "next_check_at",
)  # fmt: skip
_COPY_INSERT = f"COPY dns_records ({', '.join(_INSERT_COLUMNS)}) FROM STDIN"
_CHANGES = "pm_dns_record_changes"
_CREATE_CHANGES = (
    f"CREATE TEMPORARY TABLE {_CHANGES} (id uuid PRIMARY KEY, domain text, record_type text, "
    "record_name text, record_value text, ttl int, required bool, reset bool) ON COMMIT DROP"
)
_COPY_CHANGES = (
    f"COPY {_CHANGES} (id, domain, record_type, record_name, record_value, ttl, required, reset) "
    "FROM STDIN"
)
# A changed value resets the record as `_write_plan` does: pending verification, checked now,
# and (unless the record is manual) publishing again. Only required/ttl changed: just those.
_UPDATE_CHANGED = text(
    f"""UPDATE dns_records r SET domain = v.domain, record_type = v.record_type,
        record_name = v.record_name, record_value = v.record_value, ttl = v.ttl,
        required = v.required,
        publish_status = CASE WHEN v.reset AND r.publish_status <> :manual THEN :pending
                              ELSE r.publish_status END,
        publish_detail = CASE WHEN v.reset AND r.publish_status <> :manual THEN NULL
                              ELSE r.publish_detail END,
        published_at = CASE WHEN v.reset AND r.publish_status <> :manual THEN NULL
                            ELSE r.published_at END,
        verification_status = CASE WHEN v.reset THEN :unverified ELSE r.verification_status END,
        detail = CASE WHEN v.reset THEN NULL ELSE r.detail END,
        last_verified_at = CASE WHEN v.reset THEN NULL ELSE r.last_verified_at END,
        next_check_at = CASE WHEN v.reset THEN CAST(:now AS timestamptz) ELSE r.next_check_at END
    FROM {_CHANGES} v WHERE r.id = v.id"""  # noqa: S608
)
# `IS NOT DISTINCT FROM`, not `=`: with `=` the planner may take idx_inboxes_status from
# statistics gathered before the inboxes moved and walk every inbox of that status.
_MOVE = text(
    """UPDATE inboxes SET status = :target, updated_at = now()
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status IS NOT DISTINCT FROM :source
    RETURNING id, tenant_id, workspace_id, email_address"""
)


@dataclass
class _Host:
    ip: str | None
    ipv6: str | None
    hostname: str | None
    status: str | None


@dataclass
class _Live:
    id: uuid.UUID
    email_address: str
    status: str | None
    vps_id: uuid.UUID
    host: _Host


@dataclass
class _Stored:
    id: uuid.UUID
    record_type: str
    record_name: str
    record_value: str
    domain: str
    required: bool
    ttl: int | None


@dataclass
class _Diff:
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    deletes: list[uuid.UUID] = field(default_factory=list)
    advance: list[uuid.UUID] = field(default_factory=list)
    regress: list[uuid.UUID] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)


def generate_for_servers(
    session: Session,
    server_ids: Sequence[uuid.UUID],
    *,
    settings: DnsSettings,
    applied: Collection[str] | None = None,
) -> dict[uuid.UUID, int]:
    """Generate the records of every inbox on the servers in `server_ids` (a server without an
    IP or hostname is skipped), with `generate_for_server`'s semantics, `applied` included.
    Returns, per server, how many records were created or changed, counted as calling
    `generate_for_server` for each server in the given order would (a domain shared by several
    of them is written, and counted, with the first). The caller holds the workspaces' locks
    (the worker's finish) or none; the inboxes whose rows change are locked here first."""
    session.flush()
    order = list(dict.fromkeys(server_ids))
    counts = dict.fromkeys(order, 0)
    # Each server's workspace and domains (its live inboxes', of its own tenant), in one read.
    workspace_of: dict[uuid.UUID, uuid.UUID] = {}
    names_of: dict[uuid.UUID, set[str]] = {}
    for server_id, workspace_id, address in session.execute(
        select(VpsServer.id, VpsServer.workspace_id, Inbox.email_address)
        .join(Inbox, Inbox.vps_id == VpsServer.id)
        .where(
            VpsServer.id.in_(order),
            VpsServer.ip_address.is_not(None),
            VpsServer.hostname.is_not(None),
            VpsServer.hostname != "",
            Inbox.tenant_id == VpsServer.tenant_id,
            Inbox.status != "deleting",
        )
    ):
        workspace_of[server_id] = workspace_id
        names_of.setdefault(server_id, set()).add(_domain_of(address))
    by_workspace: dict[uuid.UUID, set[str]] = {}
    for server_id, names in names_of.items():
        by_workspace.setdefault(workspace_of[server_id], set()).update(names)
    if not by_workspace:
        return counts
    domains = _domains(session, by_workspace, settings)
    live = _live_inboxes(session, by_workspace)
    stored = _stored(session, [i.id for pairs in live.values() for i in pairs])
    targets = set(workspace_of)
    diff = _Diff()
    now = utcnow()
    written: dict[tuple[uuid.UUID, str], int] = {}
    for (workspace_id, name), pairs in sorted(live.items(), key=lambda kv: kv[0][1]):
        written[workspace_id, name] = _plan_domain(
            domains[workspace_id, name], pairs, stored, diff, now, settings, targets, applied
        )
    # Attribute each domain's writes to the first server, in the given order, that has it.
    seen: set[tuple[uuid.UUID, str]] = set()
    for server_id in order:
        for name in names_of.get(server_id, ()):
            key = (workspace_of[server_id], name)
            if key not in seen:
                seen.add(key)
                counts[server_id] += written.get(key, 0)
    _write(session, diff, now)
    return counts


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class _Domain:
    name: str
    dkim_selector: str
    dkim_public_key: str
    dkim_algorithm: str


def _domains(
    session: Session, by_workspace: dict[uuid.UUID, set[str]], settings: DnsSettings
) -> dict[tuple[uuid.UUID, str], _Domain]:
    found: dict[tuple[uuid.UUID, str], _Domain] = {}
    for row in session.execute(
        select(
            MailDomain.workspace_id, MailDomain.name, MailDomain.dkim_selector,
            MailDomain.dkim_public_key, MailDomain.dkim_algorithm,
        ).where(_per_workspace(MailDomain.workspace_id, MailDomain.name, by_workspace))
    ):  # fmt: skip
        found[row.workspace_id, row.name] = _Domain(
            row.name, row.dkim_selector, row.dkim_public_key, row.dkim_algorithm
        )
    for workspace_id, names in by_workspace.items():
        missing = sorted(n for n in names if (workspace_id, n) not in found)
        if not missing:
            continue
        workspace = session.get_one(Workspace, workspace_id)
        for name in missing:
            d = mail_domains.ensure_domain(session, workspace, name, settings=settings)
            found[workspace_id, name] = _Domain(
                d.name, d.dkim_selector, d.dkim_public_key, d.dkim_algorithm
            )
    return found


def _per_workspace(workspace: Any, name: Any, by_workspace: dict[uuid.UUID, set[str]]) -> Any:
    return or_(
        *(and_(workspace == w, name.in_(sorted(names))) for w, names in by_workspace.items())
    )


def _live_inboxes(
    session: Session, by_workspace: dict[uuid.UUID, set[str]]
) -> dict[tuple[uuid.UUID, str], list[_Live]]:
    """Every live inbox of these domains in their workspaces, with its server."""
    out: dict[tuple[uuid.UUID, str], list[_Live]] = {}
    domain = func.lower(func.split_part(Inbox.email_address, "@", 2))
    for row in session.execute(
        select(
            Inbox.id, Inbox.email_address, Inbox.status, Inbox.vps_id, Inbox.workspace_id,
            VpsServer.ip_address, VpsServer.ipv6_address, VpsServer.hostname, VpsServer.status,
        )
        .join(VpsServer, Inbox.vps_id == VpsServer.id)
        .where(Inbox.status != "deleting", _per_workspace(Inbox.workspace_id, domain, by_workspace))
    ):  # fmt: skip
        host = _Host(
            str(row[5]) if row[5] else None, str(row[6]) if row[6] else None, row[7], row[8]
        )
        out.setdefault((row.workspace_id, _domain_of(row.email_address)), []).append(
            _Live(row.id, row.email_address, row.status, row.vps_id, host)
        )
    return out


def _stored(session: Session, inbox_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, _Stored]]:
    out: dict[uuid.UUID, dict[str, _Stored]] = {}
    if not inbox_ids:
        return out
    for row in session.execute(
        select(
            DnsRecord.inbox_id, DnsRecord.purpose, DnsRecord.id, DnsRecord.record_type,
            DnsRecord.record_name, DnsRecord.record_value, DnsRecord.domain, DnsRecord.required,
            DnsRecord.ttl,
        ).where(text("dns_records.inbox_id = ANY(CAST(:inbox_ids AS uuid[]))")),
        {"inbox_ids": uuid_array(inbox_ids)},
    ):  # fmt: skip
        out.setdefault(row[0], {})[row[1]] = _Stored(*row[2:])
    return out


def _sending_ips(hosts: Iterable[_Host]) -> list[str]:
    """`service._sending_ips` on plain rows."""
    live = [h for h in hosts if h.status != "deleting"]
    ips = {h.ip for h in live if h.ip} | {h.ipv6 for h in live if h.ipv6}
    return sorted(ips, key=lambda ip: (":" in ip, ip))


def _plan_domain(
    domain: _Domain,
    pairs: list[_Live],
    stored: dict[uuid.UUID, dict[str, _Stored]],
    diff: _Diff,
    now: datetime,
    settings: DnsSettings,
    targets: set[uuid.UUID],
    applied: Collection[str] | None,
) -> int:
    """`_write_plan` for every inbox of one domain, into `diff`; the records written."""
    spf_ips = _sending_ips(i.host for i in pairs)
    written = 0
    for inbox in pairs:
        host = inbox.host
        if host.ip is None:
            continue
        planned = planned_records(
            domain,
            host.hostname,  # type: ignore[arg-type]  # as generate_for_server passes it
            host.ip,
            host.ipv6,
            spf_ips,
            settings,
        )
        existing = dict(stored.get(inbox.id, {}))
        changed = changed_required = 0
        for p in planned:
            row = existing.pop(p.purpose, None)
            if row is None:
                diff.inserts.append(
                    (inbox.id, p.domain, p.type, p.name, p.value, p.ttl, p.purpose, p.required,
                     RecordStatus.PENDING.value, now)
                )  # fmt: skip
                changed += 1
                changed_required += p.required
                continue
            same = same_value(row, p)
            if same and (row.required, row.ttl) == (p.required, p.ttl):
                continue
            diff.changes.append(
                (row.id, p.domain, p.type, p.name, p.value, p.ttl, p.required, not same)
            )
            diff.touched.add(inbox.id)
            if not same:
                changed += 1
                changed_required += p.required
        for stale in existing.values():
            diff.deletes.append(stale.id)
            diff.touched.add(inbox.id)
        if changed:
            diff.touched.add(inbox.id)
        advance = inbox.vps_id in targets and (
            applied is None or inbox.email_address.lower() in applied
        )
        if inbox.status == InboxStatus.PENDING_SETUP and advance:
            diff.advance.append(inbox.id)
            diff.touched.add(inbox.id)
        elif inbox.status == InboxStatus.READY and changed_required:
            diff.regress.append(inbox.id)
        written += changed
    return written


def _write(session: Session, diff: _Diff, now: datetime) -> None:
    """The difference, in the lock order: the inboxes whose rows change (id order), then
    their records. Stale rows go before new ones (one row per inbox and purpose)."""
    touched = diff.touched | set(diff.regress)
    if not (touched or diff.inserts):
        return
    touched |= {row[0] for row in diff.inserts}
    session.execute(
        text(
            "SELECT id FROM inboxes WHERE id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY id FOR NO KEY UPDATE"
        ),
        {"ids": uuid_array(touched)},
    ).all()
    if diff.advance:
        session.execute(
            _MOVE,
            {"ids": uuid_array(diff.advance),
             **INBOX.edge(InboxStatus.PENDING_SETUP, InboxStatus.DNS_PENDING)},
        ).all()  # fmt: skip
    if diff.regress:
        moved = session.execute(
            _MOVE,
            {"ids": uuid_array(diff.regress),
             **INBOX.edge(InboxStatus.READY, InboxStatus.DNS_PENDING)},
        ).all()  # fmt: skip
        events.record_many(
            session,
            [
                events.NewEvent(
                    row.tenant_id,
                    catalogue.DNS_REGRESSED,
                    f"the DNS records of {row.email_address} changed; publish the new values",
                    row.workspace_id,
                    "inbox",
                    row.id,
                    {"email_address": row.email_address, "reason": "records_changed"},
                )
                for row in moved
            ],
        )
    if diff.deletes:
        session.execute(
            text("DELETE FROM dns_records WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": uuid_array(diff.deletes)},
        )
    raw = session.connection().connection.driver_connection
    assert raw is not None
    if diff.changes:
        with raw.cursor() as cursor:
            cursor.execute(_CREATE_CHANGES)
            with cursor.copy(_COPY_CHANGES) as copy:
                for change in diff.changes:
                    copy.write_row(change)
            cursor.execute(f"ANALYZE {_CHANGES}")
        session.execute(
            _UPDATE_CHANGED,
            {"manual": PublishStatus.MANUAL.value, "pending": PublishStatus.PENDING.value,
             "unverified": RecordStatus.PENDING.value, "now": now},
        )  # fmt: skip
        session.execute(text(f"DROP TABLE {_CHANGES}"))
    if diff.inserts:
        with raw.cursor() as cursor, cursor.copy(_COPY_INSERT) as copy:
            for row in diff.inserts:
                copy.write_row(row)
    _expire(session, touched, set(diff.deletes))


def _expire(session: Session, inbox_ids: set[uuid.UUID], deleted: set[uuid.UUID]) -> None:
    """The session's objects of the rows written above read the database again; deleted
    records leave it (the writes bypassed the ORM)."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Inbox) and obj.id in inbox_ids:
            session.expire(obj)
        elif isinstance(obj, DnsRecord) and obj.inbox_id in inbox_ids:
            if obj.id in deleted:
                session.expunge(obj)
            else:
                session.expire(obj)
