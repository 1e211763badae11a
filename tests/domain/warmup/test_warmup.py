"""The warmup ramp and enforced caps through `apply_workspace` (what the `inbox.warmup` sweep
runs per workspace) with a given clock: 30 simulated days with a listing in the middle, holds
and their recovery, caps shared per domain and server, idempotent reruns."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.warmup import WarmupPolicy
from domain.warmup import policy as policies
from domain.warmup import ramp
from domain.warmup import service as warmup
from domain.warmup.ramp import Ramp
from settings import get_settings
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _sweep(session: Session, inbox: Inbox, now: datetime) -> warmup.Applied:
    applied = warmup.apply_workspace(session, inbox.workspace_id, now, settings=get_settings())
    session.refresh(inbox)
    return applied


def _set_health(
    session: Session, server: VpsServer, check: str, status: str, now: datetime
) -> None:
    state = session.get(HealthCheckState, (server.id, check))
    if state is None:
        state = HealthCheckState(
            vps_id=server.id,
            check=check,
            tenant_id=server.tenant_id,
            detail="",
            data={},
            checked_at=now,
            status_since=now,
            status=status,
        )
        session.add(state)
    state.status, state.checked_at = status, now
    session.flush()


def _events(session: Session, inbox: Inbox) -> list[Event]:
    return list(
        session.scalars(
            select(Event).where(Event.subject_id == inbox.id).order_by(Event.created_at, Event.id)
        ).all()
    )


def _warming_inbox(session: Session, **kw: Any) -> tuple[Inbox, VpsServer]:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    inbox = create_inbox(session, ws, server=server, status="ready", **kw)
    inbox.warmup_enabled = True
    warmup.start(session, inbox, policies.get(session, ws.id), T0)
    session.flush()
    return inbox, server


def test_the_ramp_is_a_function_of_dates() -> None:
    r = Ramp(start_daily=5, daily_increase=2, target=50)
    assert [r.step(d) for d in (1, 2, 3, 5, 23, 24, 40)] == [5, 7, 9, 13, 49, 50, 50]
    assert r.completes_on() == 24
    assert ramp.day(T0, 0, None, T0) == 1
    assert ramp.day(T0, 0, None, T0 + timedelta(hours=23, minutes=59)) == 1
    assert ramp.day(T0, 0, None, T0 + timedelta(days=1)) == 2
    # a pause 30 h in discards the 6 h of day 2 it interrupted
    at = T0 + timedelta(hours=30)
    paused_at = ramp.pause_point(T0, 0, at)
    assert paused_at == T0 + timedelta(days=1)
    resumed = T0 + timedelta(days=4)
    seconds = ramp.resumed_paused_seconds(0, paused_at, resumed)
    assert ramp.day(T0, seconds, None, resumed) == 2
    assert ramp.next_step_at(T0, seconds, 2) == resumed + timedelta(days=1)


def test_thirty_days_with_a_listing_in_the_middle_skip_and_repeat_no_step(
    session: Session,
) -> None:
    inbox, server = _warming_inbox(session)
    listed_from = T0 + timedelta(days=9, hours=3)  # during ramp day 10
    listed_until = T0 + timedelta(days=11, hours=5)
    limits: list[tuple[datetime, str, int | None, int]] = []
    timeline: list[tuple[datetime, Event]] = [(T0, e) for e in _events(session, inbox)]
    now = T0
    while now <= T0 + timedelta(days=30):
        if listed_from <= now < listed_until:
            _set_health(session, server, "dnsbl", "critical", now)
        elif now >= listed_until:
            _set_health(session, server, "dnsbl", "ok", now)
        timeline += [(now, e) for e in _sweep(session, inbox, now).events]
        # a second sweep at the same moment (two workers, a restart) changes nothing
        assert _sweep(session, inbox, now).events == []
        limits.append(
            (now, inbox.warmup_status or "", inbox.effective_daily_limit, inbox.warmup_day)
        )
        # sweeps every 6 h, with a gap of 18 h once (missed runs)
        now += timedelta(hours=24 if now == T0 + timedelta(days=4) else 6)

    events = [e for _, e in timeline]
    kinds = [e.type for e in events if e.type.startswith("inbox.warmup")]
    assert kinds[0] == "inbox.warmup_started"
    assert kinds.count("inbox.warmup_paused") == 1 and kinds.count("inbox.warmup_resumed") == 1
    assert kinds[-1] == "inbox.warmup_completed"
    days = [1] + [e.data["day"] for e in events if e.type == "inbox.warmup_advanced"]
    assert days == list(range(1, 25)), days  # every step once, in order, up to 50 a day
    assert all(
        e.data["from_day"] + 1 == e.data["day"] for e in events if e.type == "inbox.warmup_advanced"
    )
    paused = next(e for e in events if e.type == "inbox.warmup_paused")
    resumed = next(e for e in events if e.type == "inbox.warmup_resumed")
    assert paused.data == {"day": 10, "reason": "blocklist"}
    assert resumed.data["day"] == 10 and resumed.data["cleared"] == "blocklist"
    # steps come a clean day apart at least: never faster than the ramp
    advanced_at = [T0] + [at for at, e in timeline if e.type == "inbox.warmup_advanced"]
    assert all(b - a >= timedelta(days=1) for a, b in itertools.pairwise(advanced_at))
    resumed_at = next(at for at, e in timeline if e.type == "inbox.warmup_resumed")
    after = [at for at in advanced_at if at > resumed_at]
    assert after[0] - resumed_at >= timedelta(days=1)  # day 10 is run again, whole
    # the cap followed the ramp, dropped to the floor while held, and never exceeded the step
    for _at, status, limit, day in limits:
        if status == "paused":
            assert limit == 5
        elif status == "in_progress":
            assert limit == 5 + (day - 1) * 2
    held = [at for at, status, _, _ in limits if status == "paused"]
    assert min(held) >= listed_from and max(held) >= listed_until  # held a day past the clearing
    assert max(held) < listed_until + timedelta(days=1, hours=6)
    assert inbox.warmup_status == "completed" and inbox.effective_daily_limit == 50
    assert limits[-1][2] == 50


def test_event_times_follow_the_given_clock_not_the_sweep_count(session: Session) -> None:
    inbox, _ = _warming_inbox(session)
    _sweep(session, inbox, T0 + timedelta(days=2, hours=1))  # two days missed: day 3 at once
    assert inbox.warmup_day == 3 and inbox.effective_daily_limit == 9
    _sweep(session, inbox, T0 + timedelta(days=2, hours=2))
    assert inbox.warmup_day == 3
    advanced = [e for e in _events(session, inbox) if e.type == "inbox.warmup_advanced"]
    assert len(advanced) == 1
    assert [(e.data["from_day"], e.data["day"]) for e in advanced] == [(1, 3)]


def test_a_dns_regression_pauses_and_the_cap_returns_a_clean_day_later(session: Session) -> None:
    inbox, _ = _warming_inbox(session)
    _sweep(session, inbox, T0 + timedelta(days=3, hours=2))
    assert inbox.effective_daily_limit == 11
    inbox.status = "dns_pending"  # as the DNS sweep leaves a regressed inbox
    session.flush()
    _sweep(session, inbox, T0 + timedelta(days=3, hours=4))
    assert (inbox.warmup_status, inbox.hold_reason, inbox.effective_daily_limit) == (
        "paused",
        "dns",
        5,
    )
    inbox.status = "ready"
    session.flush()
    _sweep(session, inbox, T0 + timedelta(days=3, hours=5))  # clear seen: clock starts
    _sweep(session, inbox, T0 + timedelta(days=4, hours=4))  # 23 h: still held
    assert inbox.warmup_status == "paused"
    _sweep(session, inbox, T0 + timedelta(days=4, hours=5))
    assert (inbox.warmup_status, inbox.hold_reason, inbox.effective_daily_limit) == (
        "in_progress",
        None,
        11,
    )
    assert inbox.warmup_day == 4
    changes = {
        (e.data["from"], e.data["to"])
        for e in _events(session, inbox)
        if e.type == "inbox.limit_changed"
    }
    assert {(11, 5), (5, 11)} <= changes


def test_a_critical_server_holds_every_inbox_on_it_warming_or_not(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    other = create_server(session, ws, name="mx-other")
    on_it = create_inbox(session, ws, server=server, status="ready", email_address="a@x.example")
    elsewhere = create_inbox(session, ws, server=other, status="ready", email_address="b@y.example")
    _sweep(session, on_it, T0)
    assert on_it.effective_daily_limit == 50
    _set_health(session, server, "mail_server", "critical", T0)
    _sweep(session, on_it, T0 + timedelta(hours=1))
    session.refresh(elsewhere)
    assert (on_it.hold_reason, on_it.effective_daily_limit) == ("server_critical", 5)
    assert (elsewhere.hold_reason, elsewhere.effective_daily_limit) == (None, 50)
    assert on_it.warmup_status == "not_started"


def test_caps_are_shared_by_a_domain_and_a_server_and_queue_one_up(session: Session) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    session.add(
        WarmupPolicy(
            workspace_id=ws.id,
            tenant_id=tenant.id,
            start_daily=5,
            daily_increase=2,
            domain_daily_cap=90,
            server_daily_cap=160,
            floor_daily=3,
            clear_seconds=3600,
        )
    )
    inboxes = [
        create_inbox(session, ws, server=server, status="ready", email_address=f"{n}@acme.example")
        for n in ("a", "b", "c")
    ]
    lone = create_inbox(session, ws, server=server, status="ready", email_address="d@solo.example")
    applied = _sweep(session, lone, T0)
    assert applied.changed_limits == 4 and applied.operation_id is not None
    for i in inboxes:
        session.refresh(i)
        assert i.effective_daily_limit == 30  # 90 a day shared by 3 inboxes of acme.example
    assert lone.effective_daily_limit == 40  # 160 a day shared by the server's 4 inboxes
    ups = session.scalars(
        select(Operation).where(Operation.workspace_id == ws.id, Operation.kind == "up")
    ).all()
    assert len(ups) == 1
    assert _sweep(session, lone, T0 + timedelta(minutes=5)).changed_limits == 0


def test_per_inbox_overrides_change_the_ramp(session: Session) -> None:
    inbox, _ = _warming_inbox(session)
    inbox.warmup_start_daily, inbox.warmup_daily_increase, inbox.daily_send_limit = 10, 5, 30
    session.flush()
    _sweep(session, inbox, T0 + timedelta(days=1, hours=1))
    assert inbox.effective_daily_limit == 15
    _sweep(session, inbox, T0 + timedelta(days=4, hours=1))
    assert inbox.warmup_status == "completed" and inbox.effective_daily_limit == 30
