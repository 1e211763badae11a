"""An inbox's reputation_score: named signals with documented weights (docs/reputation.md).

Scale: 0.00 (worst) to 1.00 (best), two decimals: it fits the seed's DECIMAL(3,2). The score is
the weighted mean of the signals that have data (a signal without data, `value` null, is left
out rather than counted as good or bad); with no data at all it is 0.00.

| signal | weight | value |
|---|---|---|
| dns_auth | 0.35 | share of the inbox's authentication records verified (SPF, DKIM, DMARC, PTR) |
| blocklist_ip | 0.25 | 1 when the server's IPv4/IPv6 are on no trusted list, 0 when listed |
| blocklist_domain | 0.15 | 1 when the domain is on no trusted domain list, 0 when listed |
| server_health | 0.15 | worst of reachable/mail_server/disk/queue: ok 1, warning 0.5, critical 0 |
| tls | 0.10 | the server's TLS check: ok 1, warning 0.5, critical 0 |

External signals, only when a workspace has turned on the connector and it returned the
figure (`domain/reputation/connectors.py`; weights added to the mean, so a workspace without
connectors scores exactly as before):

| signal | weight | value |
|---|---|---|
| postmaster_spam_rate | 0.15 | Postmaster v2 SPAM_RATE of the domain: <0.1% 1, <0.3% 0.5, else 0 |
| postmaster_auth | 0.05 | Postmaster v2 AUTH_SUCCESS_RATE of the domain (the ratio itself) |
| postmaster_compliance | 0.05 | share of the domain's compliance requirements COMPLIANT |
| snds_filter | 0.15 | SNDS filter result of the server's IPv4: GREEN 1, YELLOW 0.5, RED 0 |
| snds_complaints | 0.05 | SNDS complaint rate: <0.1% 1, 0.1-0.3% 0.5, >=0.3% 0 |
| snds_traps | 0.05 | SNDS trap hits: 0 -> 1, any -> 0 |

The server's own counts (`domain/reputation/delivery.py`, from Stalwart's delivery counters),
only for a server with delivery samples; null (not counted) below 20 recipients in 24 h:

| signal | weight | value |
|---|---|---|
| server_bounces | 0.10 | bounce rate over 24 h: <=2% 1, <=3% 0.5, >3% 0 (and a hold) |
| server_deferrals | 0.05 | deferral rate over 24 h: <=10% 1, >10% 0.5 |

Complaints of our own sending have no counter in Stalwart; they come from the connectors.

`recompute(session, workspace_id, now)` is set-based (a handful of queries for the workspace),
writes `inboxes.reputation_score` only where it changed and keeps a history row per change."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from database.models.dns_records import DnsRecord
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from database.models.warmup import ReputationSnapshot
from database.pagination import paginate
from database.scoping import get_owned
from domain.health import blocklists
from domain.reputation import connectors, delivery
from kit.time import utcnow

WEIGHTS = {
    "dns_auth": Decimal("0.35"),
    "blocklist_ip": Decimal("0.25"),
    "blocklist_domain": Decimal("0.15"),
    "server_health": Decimal("0.15"),
    "tls": Decimal("0.10"),
}
EXTERNAL_WEIGHTS = {
    "postmaster_spam_rate": Decimal("0.15"),
    "postmaster_auth": Decimal("0.05"),
    "postmaster_compliance": Decimal("0.05"),
    "snds_filter": Decimal("0.15"),
    "snds_complaints": Decimal("0.05"),
    "snds_traps": Decimal("0.05"),
}
DELIVERY_WEIGHTS = {"server_bounces": Decimal("0.10"), "server_deferrals": Decimal("0.05")}
ALL_WEIGHTS = {**WEIGHTS, **EXTERNAL_WEIGHTS, **DELIVERY_WEIGHTS}
FILTER_VALUE = {"GREEN": 1.0, "YELLOW": 0.5, "RED": 0.0}
AUTH_PURPOSES = ("spf", "dkim", "dmarc", "ptr")
STATUS_VALUE = {"ok": 1.0, "warning": 0.5, "critical": 0.0}
HEALTH_CHECKS = ("reachable", "mail_server", "disk", "queue")


@dataclass(frozen=True)
class Signal:
    name: str
    value: float | None  # 0..1, None: no data
    weight: float
    reason: str


def score_of(signals: list[Signal]) -> Decimal:
    known = [s for s in signals if s.value is not None]
    total = sum((ALL_WEIGHTS[s.name] for s in known), Decimal(0))
    if not total:
        return Decimal("0.00")
    raw = sum((ALL_WEIGHTS[s.name] * Decimal(str(s.value)) for s in known), Decimal(0)) / total
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _signal(name: str, value: float | None, reason: str) -> Signal:
    return Signal(name, value, float(ALL_WEIGHTS[name]), reason)


def _rate_value(rate: float) -> float:
    # Thresholds quoted in the reference (sending.md 4.1): keep <0.1%, never >=0.3%.
    return 1.0 if rate < 0.001 else 0.0 if rate >= 0.003 else 0.5


def external_signals(
    postmaster: dict[str, Any] | None, snds: dict[str, Any] | None
) -> list[Signal]:
    """Only the figures a connector returned; a null figure (unreadable) is left out."""
    out: list[Signal] = []
    if postmaster:
        spam = postmaster.get("spam_rate")
        if isinstance(spam, int | float):
            out.append(
                _signal("postmaster_spam_rate", _rate_value(spam), f"Gmail spam rate {spam:.2%}")
            )
        auth = postmaster.get("auth_success_rate")
        if isinstance(auth, int | float):
            # The weakest of SPF, DKIM and DMARC (v2 reports each under its own filter).
            parts = [
                f"{m[5:]} {postmaster[m]:.1%}"
                for m in ("auth_spf", "auth_dkim", "auth_dmarc")
                if isinstance(postmaster.get(m), int | float)
            ]
            reason = f"Gmail auth success {auth:.1%}" + (f" ({', '.join(parts)})" if parts else "")
            out.append(_signal("postmaster_auth", round(float(auth), 4), reason))
        compliance = postmaster.get("compliance")
        if isinstance(compliance, dict) and compliance:
            work = sorted(r for r, v in compliance.items() if v != "COMPLIANT")
            out.append(
                _signal(
                    "postmaster_compliance",
                    round((len(compliance) - len(work)) / len(compliance), 4),
                    "all requirements compliant"
                    if not work
                    else f"needs work: {', '.join(work)}"[:300],
                )
            )
    if snds:
        colour = snds.get("filter_result")
        if colour in FILTER_VALUE:
            out.append(_signal("snds_filter", FILTER_VALUE[colour], f"SNDS filter result {colour}"))
        rate = snds.get("complaint_rate")
        if isinstance(rate, int | float):
            out.append(
                _signal("snds_complaints", _rate_value(rate), f"SNDS complaint rate {rate:.2%}")
            )
        traps = snds.get("trap_hits")
        if isinstance(traps, int):
            out.append(_signal("snds_traps", 1.0 if traps == 0 else 0.0, f"SNDS trap hits {traps}"))
    return out


def delivery_signals(rates: delivery.Rates | None) -> list[Signal]:
    """The server's own bounce and deferral rates; none without samples."""
    if rates is None:
        return []
    volume = (
        f"{rates.delivered} delivered, {rates.bounced} bounced, {rates.deferred} deferred in 24 h"
    )
    bounce, deferral = rates.bounce_rate, rates.deferral_rate
    if bounce is None or deferral is None:
        few = f"too few to rate ({volume}; {delivery.MIN_RECIPIENTS} needed)"
        return [_signal("server_bounces", None, few), _signal("server_deferrals", None, few)]
    return [
        _signal(
            "server_bounces", delivery.bounce_value(bounce), f"bounces {bounce:.1%} ({volume})"
        ),
        _signal(
            "server_deferrals",
            delivery.deferral_value(deferral),
            f"deferrals {deferral:.1%} ({volume})",
        ),
    ]


def _health_signal(
    name: str, states: dict[str, HealthCheckState], checks: tuple[str, ...]
) -> Signal:
    seen = [
        (c, states[c].status) for c in checks if c in states and states[c].status in STATUS_VALUE
    ]
    if not seen:
        return _signal(name, None, "not measured yet")
    worst = min(seen, key=lambda cs: STATUS_VALUE[cs[1]])
    value = STATUS_VALUE[worst[1]]
    reason = "all ok" if value == 1.0 else f"{worst[0]} is {worst[1]}: {states[worst[0]].detail}"
    return _signal(name, value, reason[:300])


def signals_for(
    inbox: Inbox,
    records: list[DnsRecord],
    states: dict[str, HealthCheckState],
    listed_domain: list[str] | None,
    domain_checked: bool,
) -> list[Signal]:
    auth = [r for r in records if r.purpose in AUTH_PURPOSES]
    if auth:
        ok = [r for r in auth if r.verification_status == "verified"]
        failing = sorted(r.purpose for r in auth if r.verification_status != "verified")
        dns = _signal(
            "dns_auth",
            round(len(ok) / len(auth), 4),
            "SPF, DKIM, DMARC and PTR verified"
            if not failing
            else f"not verified: {', '.join(failing)}",
        )
    else:
        dns = _signal("dns_auth", None, "no authentication records planned yet")
    bl = states.get("dnsbl")
    if bl is None or bl.status not in ("ok", "critical"):
        ip = _signal("blocklist_ip", None, bl.detail[:300] if bl else "not looked up yet")
    else:
        ip = _signal("blocklist_ip", 1.0 if bl.status == "ok" else 0.0, bl.detail[:300])
    if listed_domain:
        dom = _signal("blocklist_domain", 0.0, f"listed on {', '.join(listed_domain)}")
    elif domain_checked:
        dom = _signal("blocklist_domain", 1.0, "on no trusted domain list")
    else:
        dom = _signal("blocklist_domain", None, "not looked up yet")
    return [
        dns,
        ip,
        dom,
        _health_signal("server_health", states, HEALTH_CHECKS),
        _health_signal("tls", states, ("tls",)),
    ]


def _inputs(
    session: Session,
    inboxes: list[Inbox],
    now: datetime,
    delivery_rates: dict[uuid.UUID, delivery.Rates] | None = None,
) -> dict[uuid.UUID, list[Signal]]:
    ids = [i.id for i in inboxes]
    records: dict[uuid.UUID, list[DnsRecord]] = {}
    for r in session.scalars(select(DnsRecord).where(DnsRecord.inbox_id.in_(ids))):
        records.setdefault(r.inbox_id, []).append(r)
    servers = {i.vps_id for i in inboxes if i.vps_id is not None}
    states: dict[uuid.UUID, dict[str, HealthCheckState]] = {}
    for st in session.scalars(select(HealthCheckState).where(HealthCheckState.vps_id.in_(servers))):
        states.setdefault(st.vps_id, {})[st.check] = st
    domains = {i.email_address.rsplit("@", 1)[-1].lower() for i in inboxes}
    listed = blocklists.listed_domains(session, domains)
    checked = blocklists.checked_domains(session, domains)
    external = connectors.figures_for(session, {i.workspace_id for i in inboxes})
    sent = delivery_rates
    if sent is None:  # asked only for servers whose delivery counters were read
        read = {v for v, by_check in states.items() if by_check.get("delivery") is not None}
        sent = delivery.rates(session, read, now)
    ips: dict[uuid.UUID, str | None] = {}
    if external and servers:
        rows = session.execute(
            select(VpsServer.id, func.host(VpsServer.ip_address)).where(VpsServer.id.in_(servers))
        )
        ips = {server_id: ip for server_id, ip in rows}
    out: dict[uuid.UUID, list[Signal]] = {}
    for i in inboxes:
        domain = i.email_address.rsplit("@", 1)[-1].lower()
        ip = ips.get(i.vps_id) if i.vps_id else None
        out[i.id] = (
            signals_for(
                i,
                records.get(i.id, []),
                states.get(i.vps_id, {}) if i.vps_id else {},
                listed.get(domain),
                domain in checked,
            )
            + delivery_signals(sent.get(i.vps_id) if i.vps_id else None)
            + external_signals(
                external.get((i.workspace_id, connectors.GOOGLE_POSTMASTER, domain)),
                external.get((i.workspace_id, connectors.MICROSOFT_SNDS, ip)) if ip else None,
            )
        )
    return out


def recompute(
    session: Session,
    inboxes: list[Inbox],
    now: datetime,
    *,
    delivery_rates: dict[uuid.UUID, delivery.Rates] | None = None,
) -> int:
    """Score every given inbox (rows the caller has locked); returns how many changed.
    `delivery_rates`: the servers' bounce/deferral rates when the caller has read them already
    (domain/reputation/delivery.py), else they are read here."""
    if not inboxes:
        return 0
    ids = [i.id for i in inboxes]
    newest = (
        select(ReputationSnapshot.inbox_id, func.max(ReputationSnapshot.computed_at))
        .where(ReputationSnapshot.inbox_id.in_(ids))
        .group_by(ReputationSnapshot.inbox_id)
    )
    latest = {
        s.inbox_id: s
        for s in session.scalars(
            select(ReputationSnapshot).where(
                tuple_(ReputationSnapshot.inbox_id, ReputationSnapshot.computed_at).in_(newest)
            )
        )
    }
    changed = 0
    rows = {i.id: i for i in inboxes}
    for inbox, signals in _inputs(session, inboxes, now, delivery_rates).items():
        row = rows[inbox]
        score = score_of(signals)
        as_json = [asdict(s) for s in signals]
        last = latest.get(inbox)
        if last is not None and last.score == score and last.signals == as_json:
            continue
        row.reputation_score = score
        session.add(
            ReputationSnapshot(
                tenant_id=row.tenant_id,
                inbox_id=inbox,
                score=score,
                signals=as_json,
                computed_at=now,
            )
        )
        changed += 1
    session.flush()
    return changed


def view(
    session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID, *, limit: int, offset: int
) -> dict[str, Any]:
    inbox = get_owned(session, Inbox, tenant_id, inbox_id, noun="inbox", field="inbox_id")
    rows, total = paginate(
        session,
        ReputationSnapshot,
        [ReputationSnapshot.inbox_id == inbox.id, ReputationSnapshot.tenant_id == tenant_id],
        order_by=(ReputationSnapshot.computed_at.desc(), ReputationSnapshot.id),
        limit=limit,
        offset=offset,
    )
    current = session.scalars(
        select(ReputationSnapshot)
        .where(ReputationSnapshot.inbox_id == inbox.id, ReputationSnapshot.tenant_id == tenant_id)
        .order_by(ReputationSnapshot.computed_at.desc())
        .limit(1)
    ).first()
    if current is not None:
        signals, computed_at = current.signals, current.computed_at
    else:  # never computed: what it would be now (not stored by a read)
        now = utcnow()
        signals, computed_at = [asdict(s) for s in _inputs(session, [inbox], now)[inbox.id]], None
    return {
        "score": float(inbox.reputation_score or 0)
        if current is not None
        else float(score_of([Signal(**s) for s in signals])),
        "scale": "0.00 (worst) to 1.00 (best)",
        "computed_at": computed_at,
        "signals": signals,
        "history": {
            "items": [
                {"score": float(r.score), "computed_at": r.computed_at, "signals": r.signals}
                for r in rows
            ],
            "total": total,
            "limit": limit,
            "offset": offset,
        },
    }
