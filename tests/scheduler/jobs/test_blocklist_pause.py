"""Pause on trouble, end to end through the sweeps: nsd lists a live server's address, the
health sweep (blocklists under the shared budget) marks it critical, the warmup sweep (given
clock) pauses the inbox and drops its cap to the floor; once the listing is gone the cap comes
back only after the cause has been clear for the policy's time. A domain listing holds the
domain's inboxes the same way."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from database.models.health import DnsblLookup, HealthCheckState
from database.models.inboxes import Inbox
from database.session import session_scope
from domain.health import blocklists
from domain.warmup import policy as policies
from domain.warmup import service as warmup
from probes.types import Check, Nameserver, ProbeConfig
from scheduler.jobs import inbox_warmup, monitoring_health
from settings import get_settings
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace
from tests.support.fixtures import OverrideSettings
from tests.support.nsd import Nsd
from tests.support.zones import unique_zone

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
IP = "192.0.2.44"
HEALTHY_IP_LIST = "2.0.0.127 IN A 127.0.0.2\n"
HEALTHY_DOMAIN_LIST = "test IN A 127.0.1.2\n"


def _config(nsd: Nsd, zen: str, dbl: str) -> ProbeConfig:
    return ProbeConfig(
        timeout=1.0,
        dnsbl_zones=(zen,),
        dnsbl_domain_zones=(dbl,),
        dnsbl_nameservers=(Nameserver(nsd.host, nsd.port),),
        checks=frozenset({Check.DNSBL}),
    )


def _fleet(domain: str) -> tuple[object, object]:
    with session_scope() as s:
        tenant = create_tenant(s)
        ws = create_workspace(s, tenant, sandbox=False)
        server = create_server(s, ws, ip_address=IP)
        inbox = create_inbox(s, ws, server=server, status="ready", email_address=f"a@{domain}")
        inbox.warmup_enabled = True
        warmup.start(s, inbox, policies.get(s, ws.id), T0)
        return server.id, inbox.id


def _inbox(inbox_id: object) -> Inbox:
    with session_scope() as s:
        row = s.get(Inbox, inbox_id)
        assert row is not None
        s.expunge(row)
        return row


def test_a_listing_pauses_warmup_and_the_cap_returns_after_the_clear_time(
    committed: Engine, nsd: Nsd, override_settings: OverrideSettings
) -> None:
    zen, dbl = unique_zone("zen"), unique_zone("dbl")
    nsd.publish({zen: HEALTHY_IP_LIST + "44.2.0.192 IN A 127.0.0.2\n", dbl: HEALTHY_DOMAIN_LIST})
    server_id, inbox_id = _fleet("clean.example")
    config = _config(nsd, zen, dbl)
    override_settings(health_dnsbl_interval_seconds=3600)

    inbox_warmup.run(get_settings(), now=T0 + timedelta(hours=1))
    assert _inbox(inbox_id).effective_daily_limit == 5
    inbox_warmup.run(get_settings(), now=T0 + timedelta(days=2, hours=1))
    assert _inbox(inbox_id).effective_daily_limit == 9  # day 3

    first = monitoring_health.run(get_settings(), config)
    assert first.dnsbl_queries == 6  # the address, the domain, 2 test entries per list
    with session_scope() as s:
        state = s.get(HealthCheckState, (server_id, "dnsbl"))
        assert state is not None and state.status == "critical", state and state.detail
    # a second sweep within the interval asks nothing: the answers are shared
    again = monitoring_health.run(get_settings(), config)
    assert again.dnsbl_queries == 0 and again.dnsbl_shared == 6

    report = inbox_warmup.run(get_settings(), now=T0 + timedelta(days=2, hours=2))
    assert report.events_by_type.get("inbox.warmup_paused") == 1
    held = _inbox(inbox_id)
    assert (held.warmup_status, held.hold_reason, held.effective_daily_limit) == (
        "paused",
        "blocklist",
        5,
    )

    # delisted; the next sweep after the interval asks again
    nsd.publish({zen: HEALTHY_IP_LIST})
    override_settings(health_dnsbl_interval_seconds=0.001)
    monitoring_health.run(get_settings(), config)
    with session_scope() as s:
        state = s.get(HealthCheckState, (server_id, "dnsbl"))
        assert state is not None and state.status == "ok", state.detail

    inbox_warmup.run(get_settings(), now=T0 + timedelta(days=2, hours=3))  # clear seen
    inbox_warmup.run(get_settings(), now=T0 + timedelta(days=3, hours=2))  # 23 h: still held
    assert _inbox(inbox_id).effective_daily_limit == 5
    report = inbox_warmup.run(get_settings(), now=T0 + timedelta(days=3, hours=3))
    assert report.events_by_type.get("inbox.warmup_resumed") == 1
    back = _inbox(inbox_id)
    assert (back.warmup_status, back.hold_reason, back.warmup_day) == ("in_progress", None, 3)
    assert back.effective_daily_limit == 9


def test_a_domain_listing_holds_the_domains_inboxes(
    committed: Engine, nsd: Nsd, override_settings: OverrideSettings
) -> None:
    zen, dbl = unique_zone("zen"), unique_zone("dbl")
    nsd.publish(
        {zen: HEALTHY_IP_LIST, dbl: HEALTHY_DOMAIN_LIST + "spammy.example IN A 127.0.1.2\n"}
    )
    _, inbox_id = _fleet("spammy.example")
    monitoring_health.run(get_settings(), _config(nsd, zen, dbl))
    with session_scope() as s:
        assert blocklists.listed_domains(s, ["spammy.example", "other.example"]) == {
            "spammy.example": [dbl]
        }
    inbox_warmup.run(get_settings(), now=T0 + timedelta(hours=2))
    held = _inbox(inbox_id)
    assert (held.warmup_status, held.hold_reason) == ("paused", "domain_blocklist")


def test_a_pair_is_claimed_by_one_worker_at_a_time(committed: Engine) -> None:
    pairs = [("zen.test", "192.0.2.1"), ("zen.test", "192.0.2.2")]
    interval, lease = timedelta(hours=1), timedelta(minutes=2)
    with session_scope() as s:
        known, mine = blocklists.claim(s, pairs, T0, interval, lease)
    assert known == {} and mine == pairs
    with session_scope() as s:  # another worker, same moment: nothing to ask, nothing known yet
        assert blocklists.claim(s, pairs, T0, interval, lease) == ({}, [])
    from probes.dnsbl import ZoneAnswer

    with session_scope() as s:
        blocklists.store(s, [ZoneAnswer("zen.test", "listed", ("127.0.0.2",), "", "192.0.2.1")], T0)
    with session_scope() as s:
        known, mine = blocklists.claim(s, pairs, T0 + timedelta(minutes=1), interval, lease)
        assert mine == [] and known[pairs[0]].state == "listed"
        # the unanswered claim expires: another worker may ask
        known, mine = blocklists.claim(s, pairs, T0 + timedelta(minutes=3), interval, lease)
        assert mine == [pairs[1]]
        # an hour on, the answer is due again (and the unanswered one's claim lapsed)
        known, mine = blocklists.claim(s, pairs, T0 + timedelta(hours=1), interval, lease)
        assert mine == pairs
        assert s.scalar(select(func.count()).select_from(DnsblLookup)) == 2
