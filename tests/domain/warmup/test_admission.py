"""The create's set-based caps (domain.warmup.admission) against the whole rule
(`apply_workspace`): after every create the sweep finds nothing to change, so what the create
wrote is what the rule says; neighbours' shares shrink with their events; a new inbox on a
listed or critical server or a listed domain is held at the floor from its first run."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import DnsblLookup, HealthCheckState
from database.models.inboxes import Inbox
from database.models.servers import VpsServer
from database.models.warmup import WarmupPolicy
from domain.inboxes import service as inboxes
from domain.inboxes.schemas import InboxCreate
from domain.warmup import policy as policies
from domain.warmup import service as warmup
from kit.errors import Conflict
from settings import get_settings
from tests.support.factories import (
    Tenant,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _create(session: Session, tenant: Tenant, ws_id: uuid.UUID, address: str) -> Inbox:
    return inboxes.create(
        session,
        tenant.tenant.id,
        ws_id,
        InboxCreate(email_address=address, vps_provider="hetzner", vps_size="starter"),
        settings=get_settings(),
    ).inbox


def _policy(
    session: Session,
    tenant: Tenant,
    ws_id: uuid.UUID,
    *,
    domain_daily_cap: int | None,
    server_daily_cap: int | None,
) -> None:
    """The workspace's policy: ramp 5 + 2 a day, floor 3, with the caps given."""
    session.add(
        WarmupPolicy(
            workspace_id=ws_id,
            tenant_id=tenant.tenant.id,
            start_daily=5,
            daily_increase=2,
            domain_daily_cap=domain_daily_cap,
            server_daily_cap=server_daily_cap,
            floor_daily=3,
            clear_seconds=86400,
        )
    )
    session.flush()


def _caps(session: Session, ws_id: uuid.UUID) -> dict[str, tuple[int | None, str | None]]:
    session.expire_all()
    rows = session.scalars(select(Inbox).where(Inbox.workspace_id == ws_id)).all()
    return {i.email_address: (i.effective_daily_limit, i.hold_reason) for i in rows}


def _the_rule_agrees(session: Session, ws_id: uuid.UUID) -> None:
    """The whole rule, run now, changes no cap, holds nothing new and queues nothing."""
    before = _caps(session, ws_id)
    applied = warmup.apply_workspace(session, ws_id, NOW, settings=get_settings())
    assert applied.changed_limits == 0, (before, _caps(session, ws_id))
    assert _caps(session, ws_id) == before


def _limit_events(session: Session, ws_id: uuid.UUID) -> list[dict[str, object]]:
    rows = session.scalars(
        select(Event)
        .where(Event.workspace_id == ws_id, Event.type == "inbox.limit_changed")
        .order_by(Event.message)
    ).all()
    return [{"message": e.message, **e.data, "name": e.workspace_name} for e in rows]


def test_domain_shares_shrink_for_every_neighbour_with_its_event(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_mail_domain(session, ws, "acme.example")
    create_server(session, ws)
    expected = [50, 50, 50, 37, 30]  # min(50, 150 // n)
    for n, cap in enumerate(expected, start=1):
        inbox = _create(session, tenant, ws.id, f"u{n}@acme.example")
        assert inbox.effective_daily_limit == cap and inbox.hold_reason is None
        assert {c for c, _ in _caps(session, ws.id).values()} == {cap}
        _the_rule_agrees(session, ws.id)
    events = _limit_events(session, ws.id)
    # 3 neighbours 50 -> 37, then 4 neighbours 37 -> 30; the new inbox's first cap is no change
    assert len(events) == 7
    assert events[0] == {
        "message": "daily cap of u1@acme.example is now 30 (was 37)",
        "from": 37,
        "to": 30,
        "limited_by": "domain",
        "hold": None,
        "name": ws.name,
    }
    # another domain of the workspace is not a neighbour
    _create(session, tenant, ws.id, "solo@other.example")
    assert _caps(session, ws.id)["solo@other.example"] == (50, None)
    assert len(_limit_events(session, ws.id)) == 7
    _the_rule_agrees(session, ws.id)


def test_server_shares_and_a_warming_neighbour_below_its_share(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    _policy(session, tenant, ws.id, domain_daily_cap=None, server_daily_cap=90)
    first = _create(session, tenant, ws.id, "a@one.example")
    assert first.vps_id == server.id and first.effective_daily_limit == 50
    # warming: day 1's step, 5, is below any share, and a create must not raise it
    first.warmup_enabled, first.status = True, "ready"
    warmup.start(session, first, policies.get(session, ws.id), NOW)
    warmup.apply_workspace(session, ws.id, NOW, settings=get_settings())
    _create(session, tenant, ws.id, "b@two.example")  # other domain, same server: 90 // 2
    _create(session, tenant, ws.id, "c@three.example")  # 90 // 3
    assert _caps(session, ws.id) == {
        "a@one.example": (5, None),
        "b@two.example": (30, None),
        "c@three.example": (30, None),
    }
    _the_rule_agrees(session, ws.id)
    ramp_started, shared = _limit_events(session, ws.id)  # ordered by message
    assert (ramp_started["from"], ramp_started["to"]) == (50, 5)
    assert (shared["from"], shared["to"], shared["limited_by"]) == (45, 30, "server")
    assert shared["message"] == "daily cap of b@two.example is now 30 (was 45)"


def _health(session: Session, server: VpsServer, check: str) -> None:
    session.add(
        HealthCheckState(
            vps_id=server.id,
            check=check,
            tenant_id=server.tenant_id,
            detail="",
            data={},
            checked_at=NOW,
            status_since=NOW,
            status="critical",
        )
    )
    session.flush()


def _domain_list(session: Session, zone: str, *, trusted: bool, lists: str) -> None:
    # RFC 5782 test entries: a working domain list lists `test` and not `invalid`
    for subject, state in (
        ("test", "listed" if trusted else "not_listed"),
        ("invalid", "not_listed"),
        (lists, "listed"),
    ):
        session.add(DnsblLookup(zone=zone, subject=subject, state=state, checked_at=NOW))
    session.flush()


@pytest.mark.parametrize(
    ("trouble", "hold"),
    [
        ("dnsbl", "blocklist"),
        ("disk", "server_critical"),
        ("both", "blocklist"),
        ("trusted domain list", "domain_blocklist"),
        ("untrusted domain list", None),
    ],
)
def test_a_new_inbox_in_trouble_is_held_at_the_floor_from_its_first_run(
    session: Session, trouble: str, hold: str | None
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    domain = f"{uuid.uuid4().hex[:8]}.example"
    if trouble in ("dnsbl", "both"):
        _health(session, server, "dnsbl")
    if trouble in ("disk", "both"):
        _health(session, server, "disk")
    if trouble.endswith("domain list"):
        zone = f"dbl{uuid.uuid4().hex[:6]}.test"
        _domain_list(session, zone, trusted=trouble.startswith("trusted"), lists=domain)
    inbox = _create(session, tenant, ws.id, f"new@{domain}")
    assert inbox.hold_reason == hold
    assert inbox.effective_daily_limit == (policies.DEFAULTS.floor_daily if hold else 50)
    _the_rule_agrees(session, ws.id)


def test_a_taken_address_changes_no_neighbour(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_server(session, ws)
    for n in range(3):
        _create(session, tenant, ws.id, f"u{n}@acme.example")
    before = _caps(session, ws.id)
    # no savepoint: even a caller that went on after the Conflict finds no neighbour lowered
    with pytest.raises(Conflict):
        _create(session, tenant, ws.id, "U0@acme.example")
    assert _caps(session, ws.id) == before
    assert _limit_events(session, ws.id) == []


def test_a_share_never_falls_below_one_a_day_and_the_run_accepts_it(session: Session) -> None:
    """More inboxes on a domain (or a server) than its cap: each keeps 1 a day. A share of 0
    failed the workspace's every run (Stalwart's rate is 1..1000000), so all its inboxes."""
    from automation.desired_state import build_fleet_config

    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    create_server(session, ws)
    _policy(session, tenant, ws.id, domain_daily_cap=2, server_daily_cap=3)
    for n in range(4):
        _create(session, tenant, ws.id, f"u{n}@one.example")
    _create(session, tenant, ws.id, "v@two.example")
    caps = _caps(session, ws.id)
    assert {cap for cap, _ in caps.values()} == {1}, caps
    _the_rule_agrees(session, ws.id)
    config = build_fleet_config(session, ws)  # the run's config check: raised on a 0
    assert sorted(m.daily_limit for m in config.mailboxes) == [1, 1, 1, 1, 1]
