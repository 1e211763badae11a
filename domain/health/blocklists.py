"""The blocklist query budget, shared by every worker through `dnsbl_lookups`.

Each list is asked about each address or domain at most once per interval: a sweep `claim`s
the (list, subject) pairs whose answer is older than the interval and that no other worker is
asking right now (`claimed_until`), in one INSERT ... ON CONFLICT DO UPDATE ... WHERE, asks only
those (no transaction open), and `store`s the answers; every other pair is answered from the
table, so a second worker, a second server with the same address or a second domain sharing a
list reuses the answer. The rows are public DNS data, not tenant data: no tenant_id."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from database.models.health import DnsblLookup
from database.models.inboxes import Inbox
from probes import dnsbl
from probes.dnsbl import ZoneAnswer

Pair = tuple[str, str]  # (zone, subject)


def claim(
    session: Session,
    pairs: Iterable[Pair],
    now: datetime,
    interval: timedelta,
    lease: timedelta,
) -> tuple[dict[Pair, ZoneAnswer], list[Pair]]:
    """(answers already known, pairs this caller must ask now). Known answers include stale ones
    another worker is refreshing: the last answer stands until the new one is stored."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}, []
    t = DnsblLookup.__table__
    stmt = insert(DnsblLookup).values(
        [
            {"zone": z, "subject": s, "state": dnsbl.UNKNOWN, "claimed_until": now + lease}
            for z, s in wanted
        ]
    )
    claiming = stmt.on_conflict_do_update(
        index_elements=["zone", "subject"],
        set_={"claimed_until": now + lease},
        where=and_(
            or_(t.c.checked_at.is_(None), t.c.checked_at <= now - interval),
            or_(t.c.claimed_until.is_(None), t.c.claimed_until <= now),
        ),
    ).returning(t.c.zone, t.c.subject)
    mine = sorted((z, s) for z, s in session.execute(claiming).all())
    mine_set = set(mine)
    known: dict[Pair, ZoneAnswer] = {}
    for row in session.scalars(
        select(DnsblLookup).where(
            tuple_(DnsblLookup.zone, DnsblLookup.subject).in_(wanted),
            DnsblLookup.checked_at.is_not(None),
        )
    ):
        if (row.zone, row.subject) not in mine_set:
            known[(row.zone, row.subject)] = ZoneAnswer(
                row.zone, row.state, tuple(row.codes), row.detail, row.subject
            )
    return known, mine


def store(session: Session, answers: Sequence[ZoneAnswer], now: datetime) -> None:
    for a in sorted(answers, key=lambda a: (a.zone, a.subject)):
        session.execute(
            update(DnsblLookup)
            .where(DnsblLookup.zone == a.zone, DnsblLookup.subject == a.subject)
            .values(
                state=a.state,
                codes=list(a.codes),
                detail=a.detail[:500],
                checked_at=now,
                claimed_until=None,
            )
        )


def domains_on(session: Session, server_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """The mail domains of the inboxes on each server (what the domain lists are asked about)."""
    out: dict[uuid.UUID, set[str]] = {}
    if not server_ids:
        return out
    domain = func.lower(func.split_part(Inbox.email_address, "@", 2))
    for vps_id, name in session.execute(
        select(Inbox.vps_id, domain).where(Inbox.vps_id.in_(server_ids)).distinct()
    ):
        if vps_id is not None:
            out.setdefault(vps_id, set()).add(name)
    return out


def listed_domains(session: Session, domains: Iterable[str]) -> dict[str, list[str]]:
    """Domains listed by a domain list that passes its RFC 5782 test entries -> those lists."""
    names = sorted(set(domains))
    if not names:
        return {}
    must, must_not = dnsbl.TEST_ENTRIES[dnsbl.DOMAIN]
    rows = session.scalars(
        select(DnsblLookup).where(
            DnsblLookup.subject.in_([*names, must, must_not]), DnsblLookup.checked_at.is_not(None)
        )
    ).all()
    by_zone: dict[str, dict[str, str]] = {}
    for r in rows:
        by_zone.setdefault(r.zone, {})[r.subject] = r.state
    out: dict[str, list[str]] = {}
    for zone, states in by_zone.items():
        if states.get(must) != dnsbl.LISTED or states.get(must_not) != dnsbl.NOT_LISTED:
            continue  # not a trusted domain list (or not a domain list at all)
        for name in names:
            if states.get(name) == dnsbl.LISTED:
                out.setdefault(name, []).append(zone)
    return out


def checked_domains(session: Session, domains: Iterable[str]) -> set[str]:
    """Domains some list has answered about (listed or not)."""
    names = sorted(set(domains))
    if not names:
        return set()
    return set(
        session.scalars(
            select(DnsblLookup.subject)
            .where(DnsblLookup.subject.in_(names), DnsblLookup.checked_at.is_not(None))
            .where(DnsblLookup.state.in_([dnsbl.LISTED, dnsbl.NOT_LISTED]))
            .distinct()
        )
    )


def domain_listed(domain: str) -> ColumnElement[bool]:
    """`domain in listed_domains(session, [domain])` as a SQL condition, for a statement that
    decides a hold without a round trip of its own (domain.warmup.admission)."""
    must, must_not = dnsbl.TEST_ENTRIES[dnsbl.DOMAIN]
    listed = aliased(DnsblLookup, name="listed")

    def answered(subject: str, state: str) -> ColumnElement[bool]:
        entry = aliased(DnsblLookup, name=f"entry_{state}")
        return exists().where(
            entry.zone == listed.zone,
            entry.subject == subject,
            entry.state == state,
            entry.checked_at.is_not(None),
        )

    return exists().where(
        listed.subject == domain,
        listed.state == dnsbl.LISTED,
        listed.checked_at.is_not(None),
        answered(must, dnsbl.LISTED),
        answered(must_not, dnsbl.NOT_LISTED),
    )
