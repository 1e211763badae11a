"""The server's own bounce and deferral rates from the `delivery` check's samples on real
Postgres: increases summed over 24 h, a restart counted from zero, too few recipients unknown;
the signals they give; and the pause on bounces over 3% and the recovery, through the warmup
sweep with a given clock."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.models.events import Event
from database.models.health import HealthCheckResult, HealthCheckState
from database.models.servers import VpsServer
from domain.reputation import delivery
from domain.reputation import service as reputation
from domain.warmup import policy as policies
from domain.warmup import service as warmup
from settings import get_settings
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _sample(
    session: Session,
    server: VpsServer,
    at: datetime,
    delivered: int,
    bounced: int,
    deferred: int = 0,
    status: str = "ok",
) -> None:
    """One sweep's delivery result: the history row and the latest state, as the health sweep
    writes them."""
    data = {"delivered": delivered, "bounced": bounced, "deferred": deferred}
    state = session.get(HealthCheckState, (server.id, "delivery"))
    if state is None:
        state = HealthCheckState(
            vps_id=server.id, check="delivery", tenant_id=server.tenant_id, status_since=at
        )
        session.add(state)
    state.status, state.detail, state.data, state.checked_at = status, "", data, at
    session.add(
        HealthCheckResult(
            tenant_id=server.tenant_id,
            vps_id=server.id,
            check="delivery",
            status=status,
            detail="",
            value=float(bounced),
            data=data,
            checked_at=at,
        )
    )
    session.flush()


def _server(session: Session) -> VpsServer:
    tenant = create_tenant(session)
    return create_server(session, create_workspace(session, tenant))


def test_increases_are_summed_over_the_window_and_a_restart_counts_from_zero(
    session: Session,
) -> None:
    server = _server(session)
    _sample(session, server, T0 - timedelta(hours=30), 0, 0)  # outside the window
    _sample(session, server, T0 - timedelta(hours=20), 500, 10, 4)
    _sample(session, server, T0 - timedelta(hours=10), 600, 12, 6)  # +100 +2 +2
    _sample(session, server, T0 - timedelta(hours=9), 40, 1, 0)  # restarted: +40 +1 +0
    _sample(session, server, T0 - timedelta(hours=8), 99, 99, 99, status="unknown")  # unread
    _sample(session, server, T0 - timedelta(hours=1), 100, 4, 1)  # +60 +3 +1
    (r,) = delivery.rates(session, [server.id], T0).values()
    assert (r.delivered, r.bounced, r.deferred, r.samples) == (200, 6, 3, 4)
    assert r.bounce_rate == 6 / 206
    assert r.deferral_rate == 3 / 209
    later = delivery.rates(session, [server.id], T0 + timedelta(hours=14))[server.id]
    assert (later.delivered, later.bounced) == (60, 3)  # the samples before -9 h left the window


def test_too_few_recipients_or_samples_are_unknown_never_clean(session: Session) -> None:
    server, lone = _server(session), _server(session)
    _sample(session, server, T0 - timedelta(hours=2), 0, 0)
    _sample(session, server, T0 - timedelta(hours=1), 15, 4)  # 19 recipients
    _sample(session, lone, T0 - timedelta(hours=1), 1000, 0)  # one sample: no increase yet
    got = delivery.rates(session, [server.id, lone.id], T0)
    assert set(got) == {server.id}
    assert got[server.id].bounce_rate is None
    signals = reputation.delivery_signals(got[server.id])
    assert [(s.name, s.value) for s in signals] == [
        ("server_bounces", None),
        ("server_deferrals", None),
    ]
    assert "too few to rate" in signals[0].reason
    assert reputation.delivery_signals(None) == []


def test_the_signals_follow_the_documented_thresholds() -> None:
    def values(delivered: int, bounced: int, deferred: int) -> list[float | None]:
        rates = delivery.Rates(delivered, bounced, deferred, 2)
        return [s.value for s in reputation.delivery_signals(rates)]

    assert values(98, 2, 0) == [1.0, 1.0]  # 2.0% bounces, no deferrals
    assert values(975, 25, 0) == [0.5, 1.0]  # 2.5%
    assert values(96, 4, 20) == [0.0, 0.5]  # 4% bounces, 16.7% deferrals


def test_bounces_over_three_percent_pause_warmup_and_the_cap_returns_after_clearing(
    session: Session,
) -> None:
    tenant = create_tenant(session)
    ws = create_workspace(session, tenant)
    server = create_server(session, ws)
    inbox = create_inbox(session, ws, server=server, status="ready")
    inbox.warmup_enabled = True
    warmup.start(session, inbox, policies.get(session, ws.id), T0)
    session.flush()

    def sweep(at: datetime) -> None:
        warmup.apply_workspace(session, ws.id, at, settings=get_settings())
        session.refresh(inbox)

    day3 = T0 + timedelta(days=2, hours=1)
    _sample(session, server, day3 - timedelta(hours=2), 1000, 10)
    _sample(session, server, day3 - timedelta(hours=1), 1100, 12)  # 2% of 102: clean
    sweep(day3)
    assert (inbox.warmup_status, inbox.hold_reason, inbox.effective_daily_limit) == (
        "in_progress",
        None,
        9,
    )
    _sample(session, server, day3 + timedelta(hours=1), 1150, 20)  # +50 +8: 10/160 = 6.25%
    sweep(day3 + timedelta(hours=2))
    assert (inbox.warmup_status, inbox.hold_reason, inbox.effective_daily_limit) == (
        "paused",
        "bounces",
        5,
    )
    paused = session.scalars(
        select(Event).where(Event.subject_id == inbox.id, Event.type == "inbox.warmup_paused")
    ).one()
    assert paused.data["reason"] == "bounces"
    signals = {s.name: s for s in reputation._inputs(session, [inbox], day3 + timedelta(hours=2))[
        inbox.id
    ]}  # fmt: skip
    assert signals["server_bounces"].value == 0.0 and "6.2%" in signals["server_bounces"].reason
    # Clean sending afterwards: once the bad hour has left the window the cause is clear,
    # and the cap comes back clear_seconds (a day) after the first sweep that saw it clear.
    clear_at = day3 + timedelta(hours=26)
    for hours in range(3, 27):
        _sample(session, server, day3 + timedelta(hours=hours), 1150 + 100 * hours, 20)
    sweep(clear_at)
    assert (inbox.hold_reason, inbox.hold_clear_since) == ("bounces", clear_at)
    assert inbox.warmup_status == "paused"  # cleared, but not for a day yet
    sweep(clear_at + timedelta(hours=23))
    assert (inbox.warmup_status, inbox.effective_daily_limit) == ("paused", 5)
    sweep(clear_at + timedelta(days=1, minutes=1))
    assert (inbox.warmup_status, inbox.hold_reason) == ("in_progress", None)
    assert inbox.effective_daily_limit == 9
