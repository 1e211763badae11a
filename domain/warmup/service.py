"""Warmup and enforced caps, one workspace per transaction (docs/warmup.md).

`apply_workspace(session, workspace_id, now, ...)` is the whole rule, idempotent for a given
`now`: it locks the workspace, then its inboxes in id order (the lock order), reads the trouble
its servers and inboxes show, and for every inbox
1. holds or releases it: trouble (`blocklist`: the server's dnsbl check is critical;
   `server_critical`: another check is; `bounces`: the server's own bounce rate over the last
   24 h is over 3% (domain/reputation/delivery.py); `domain_blocklist`: a trusted domain list
   lists its domain; `dns`: a warming inbox is not `ready`) holds it at the
   policy's floor; the hold is released once the cause has been clear for `clear_seconds`;
2. moves its warmup through `WARMUP`: a hold pauses it (the interrupted ramp day is discarded),
   a release resumes it, a new ramp day advances it, reaching the inbox's limit completes it;
3. computes the effective daily cap, min(daily_send_limit, ramp step or floor, the domain's and
   the server's cap shared by their inboxes), and when any changed queues one `up` (coalesced
   like every stack change) so Stalwart enforces it.
Then it recomputes the inboxes' reputation scores (`domain.reputation.service`) from the
same data. The sweep (`scheduler.jobs.inbox_warmup`) and the PATCH that enables warmup both
call it; an inbox create applies the part of it that a create changes in its own INSERT
(`domain.warmup.admission`)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from domain.events import catalogue
from domain.events import service as events
from domain.health import blocklists
from domain.operations import service as operations
from domain.reputation import delivery
from domain.reputation import service as reputation
from domain.warmup import policy as policies
from domain.warmup import ramp
from domain.warmup.policy import Policy
from domain.warmup.states import WARMUP, WarmupStatus
from domain.workspaces import service as workspaces
from settings.operations import OperationSettings

S = WarmupStatus
DELETING = "deleting"
BLOCKLIST, SERVER_CRITICAL, DNS = "blocklist", "server_critical", "dns"
DOMAIN_BLOCKLIST = "domain_blocklist"


@dataclass
class Applied:
    events: list[Event] = field(default_factory=list)
    changed_limits: int = 0
    reputation_changed: int = 0
    operation_id: uuid.UUID | None = None


def server_trouble(
    session: Session, workspace_id: uuid.UUID, delivering: set[uuid.UUID] | None = None
) -> dict[uuid.UUID, str]:
    """Servers of the workspace with a critical check: `blocklist` before `server_critical`.
    The same read adds to `delivering` the servers whose delivery counters were read, so the
    bounce rates are asked for only where there are any."""
    rows = session.execute(
        select(HealthCheckState.vps_id, HealthCheckState.check, HealthCheckState.status)
        .join(VpsServer, VpsServer.id == HealthCheckState.vps_id)
        .where(
            VpsServer.workspace_id == workspace_id,
            (HealthCheckState.status == "critical") | (HealthCheckState.check == "delivery"),
        )
    ).all()
    out: dict[uuid.UUID, str] = {}
    for vps_id, check, status in rows:
        if check == "delivery" and delivering is not None:
            delivering.add(vps_id)  # its stored samples count even while a read fails
        if status != "critical":
            continue
        if check == "dnsbl":
            out[vps_id] = BLOCKLIST
        else:
            out.setdefault(vps_id, SERVER_CRITICAL)
    return out


def _warming(inbox: Inbox) -> bool:
    return bool(inbox.warmup_enabled) and inbox.warmup_status in (S.IN_PROGRESS, S.PAUSED)


def _trouble(
    inbox: Inbox, servers: dict[uuid.UUID, str], listed_domains: dict[str, list[str]]
) -> str | None:
    if inbox.vps_id is not None and inbox.vps_id in servers:
        return servers[inbox.vps_id]
    if _domain(inbox) in listed_domains:
        return DOMAIN_BLOCKLIST
    if _warming(inbox) and inbox.status != "ready":
        return DNS
    return None


def _event(
    session: Session,
    out: Applied,
    inbox: Inbox,
    type_: catalogue.EventType,
    msg: str,
    data: dict[str, object],
) -> None:
    out.events.append(
        events.record(
            session,
            tenant_id=inbox.tenant_id,
            workspace_id=inbox.workspace_id,
            type=type_,
            message=msg,
            subject_type="inbox",
            subject_id=inbox.id,
            data=data,
        )
    )


def _hold(inbox: Inbox, reason: str | None, policy: Policy, now: datetime) -> str | None:
    """Update the hold; returns the reason released by this call, if any."""
    if reason is not None:
        inbox.hold_reason, inbox.hold_clear_since = reason, None
        return None
    if inbox.hold_reason is None:
        return None
    if inbox.hold_clear_since is None:
        inbox.hold_clear_since = now
        return None
    if now - inbox.hold_clear_since < timedelta(seconds=policy.clear_seconds):
        return None
    released, inbox.hold_reason, inbox.hold_clear_since = inbox.hold_reason, None, None
    return released


def _warmup(
    session: Session,
    out: Applied,
    inbox: Inbox,
    policy: Policy,
    now: datetime,
    released: str | None,
) -> None:
    if not _warming(inbox) or inbox.warmup_started_at is None:
        return
    r = policy.ramp(inbox)
    addr = inbox.email_address
    if inbox.warmup_status == S.IN_PROGRESS and inbox.hold_reason is not None:
        inbox.warmup_paused_at = ramp.pause_point(
            inbox.warmup_started_at, inbox.warmup_paused_seconds, now
        )
        day = ramp.day(
            inbox.warmup_started_at, inbox.warmup_paused_seconds, inbox.warmup_paused_at, now
        )
        inbox.warmup_day = max(inbox.warmup_day, day)
        WARMUP.move(inbox, S.PAUSED)
        _event(
            session,
            out,
            inbox,
            catalogue.INBOX_WARMUP_PAUSED,
            f"warmup of {addr} paused on day {inbox.warmup_day}: {inbox.hold_reason}",
            {"day": inbox.warmup_day, "reason": inbox.hold_reason},
        )
        return
    if inbox.warmup_status == S.PAUSED:
        if inbox.hold_reason is not None or inbox.warmup_paused_at is None:
            return
        inbox.warmup_paused_seconds = ramp.resumed_paused_seconds(
            inbox.warmup_paused_seconds, inbox.warmup_paused_at, now
        )
        inbox.warmup_paused_at = None
        WARMUP.move(inbox, S.IN_PROGRESS)
        _event(
            session,
            out,
            inbox,
            catalogue.INBOX_WARMUP_RESUMED,
            f"warmup of {addr} resumed on day {inbox.warmup_day}",
            {"day": inbox.warmup_day, "daily_limit": r.step(inbox.warmup_day), "cleared": released},
        )
    day = ramp.day(inbox.warmup_started_at, inbox.warmup_paused_seconds, None, now)
    if day > inbox.warmup_day:
        before, inbox.warmup_day = inbox.warmup_day, day
        _event(
            session,
            out,
            inbox,
            catalogue.INBOX_WARMUP_ADVANCED,
            f"warmup of {addr} is at day {day}: {r.step(day)} a day",
            {"from_day": before, "day": day, "daily_limit": r.step(day), "target": r.target},
        )
    if r.step(inbox.warmup_day) >= r.target:
        WARMUP.move(inbox, S.COMPLETED)
        _event(
            session,
            out,
            inbox,
            catalogue.INBOX_WARMUP_COMPLETED,
            f"warmup of {addr} completed at {r.target} a day",
            {"day": inbox.warmup_day, "daily_limit": r.target},
        )


def effective_limit(
    inbox: Inbox, policy: Policy, domain_count: int, server_count: int
) -> tuple[int, str]:
    """The cap and what decides it (`inbox`, `warmup`, `hold`, `domain`, `server`)."""
    bounds: list[tuple[int, str]] = [
        (inbox.daily_send_limit or policies.DEFAULT_DAILY_SEND_LIMIT, "inbox")
    ]
    if _warming(inbox):
        bounds.append((policy.ramp(inbox).step(max(inbox.warmup_day, 1)), "warmup"))
    if inbox.hold_reason is not None:
        bounds.append((policy.floor_daily, "hold"))
    # A share is at least 1 a day: Stalwart's rate cannot say 0 (Rate.count is 1..1000000,
    # stacks.config.validate_daily_limit), and a 0 made the workspace's every run fail its
    # config check, so every inbox of the workspace failed (issue 16's faults/clients run: a
    # domain with more inboxes than its `domain_daily_cap`). Past the cap the domain's total is
    # one a day per inbox.
    if policy.domain_daily_cap is not None and domain_count:
        bounds.append((max(1, policy.domain_daily_cap // domain_count), "domain"))
    if policy.server_daily_cap is not None and server_count:
        bounds.append((max(1, policy.server_daily_cap // server_count), "server"))
    return min(bounds, key=lambda b: b[0])


def _domain(inbox: Inbox) -> str:
    return inbox.email_address.rsplit("@", 1)[-1].lower()


def apply_workspace(
    session: Session,
    workspace_id: uuid.UUID,
    now: datetime,
    *,
    settings: OperationSettings,
    reason: str = "sending limits",
) -> Applied:
    out = Applied()
    workspace = workspaces.lock_by_id(session, workspace_id)
    if workspace is None:
        return out
    inboxes = session.scalars(
        select(Inbox)
        .where(Inbox.workspace_id == workspace.id, Inbox.tenant_id == workspace.tenant_id)
        .where(Inbox.status.is_(None) | (Inbox.status != DELETING))
        .order_by(Inbox.id)
        .with_for_update()
    ).all()
    if not inboxes:
        return out
    policy = policies.get(session, workspace.id)
    delivering: set[uuid.UUID] = set()
    servers = server_trouble(session, workspace.id, delivering)
    per_domain = Counter(_domain(i) for i in inboxes)
    per_server = Counter(i.vps_id for i in inboxes if i.vps_id is not None)
    # A bounce rate over the threshold holds the server's inboxes (after a listing or a
    # critical check, which name the cause first). One read, none without counters.
    sent = delivery.rates(session, delivering & set(per_server), now)
    for vps_id, cause in delivery.trouble(sent).items():
        servers.setdefault(vps_id, cause)
    listed = blocklists.listed_domains(session, per_domain)
    for inbox in inboxes:
        released = _hold(inbox, _trouble(inbox, servers, listed), policy, now)
        _warmup(session, out, inbox, policy, now, released)
        limit, bound = effective_limit(
            inbox,
            policy,
            per_domain[_domain(inbox)],
            per_server[inbox.vps_id] if inbox.vps_id else 0,
        )
        if limit != inbox.effective_daily_limit:
            old, inbox.effective_daily_limit = inbox.effective_daily_limit, limit
            out.changed_limits += 1
            if old is not None:
                _event(
                    session,
                    out,
                    inbox,
                    catalogue.INBOX_LIMIT_CHANGED,
                    f"daily cap of {inbox.email_address} is now {limit} (was {old})",
                    {"from": old, "to": limit, "limited_by": bound, "hold": inbox.hold_reason},
                )
    out.reputation_changed = reputation.recompute(session, list(inboxes), now, delivery_rates=sent)
    if out.changed_limits:
        op = operations.enqueue(session, workspace, "up", reason=reason, settings=settings)
        out.operation_id = op.id
    session.flush()
    return out


def start(session: Session, inbox: Inbox, policy: Policy, now: datetime) -> Event | None:
    """Warmup enabled: day 1 begins now (again from day 1 after a disable)."""
    if inbox.warmup_status != S.NOT_STARTED:
        return None
    inbox.warmup_started_at, inbox.warmup_paused_at = now, None
    inbox.warmup_paused_seconds, inbox.warmup_day = 0, 1
    WARMUP.move(inbox, S.IN_PROGRESS)
    r = policy.ramp(inbox)
    return events.record(
        session,
        tenant_id=inbox.tenant_id,
        workspace_id=inbox.workspace_id,
        type=catalogue.INBOX_WARMUP_STARTED,
        message=f"warmup of {inbox.email_address} started at {r.step(1)} a day",
        subject_type="inbox",
        subject_id=inbox.id,
        data={"day": 1, "daily_limit": r.step(1), "target": r.target},
    )


def stop(inbox: Inbox) -> None:
    if inbox.warmup_status is not None:
        WARMUP.move(inbox, S.NOT_STARTED)
    inbox.warmup_started_at = inbox.warmup_paused_at = None
    inbox.warmup_paused_seconds, inbox.warmup_day = 0, 0


def workspaces_with_inboxes(session: Session) -> list[uuid.UUID]:
    return list(
        session.scalars(select(Inbox.workspace_id).distinct().order_by(Inbox.workspace_id)).all()
    )
