"""The dns.verify sweep against nsd, with real commits (it opens its own transactions)."""

import multiprocessing
import multiprocessing.process
import os
import signal
import threading
import time
import uuid

from sqlalchemy import Engine, func, select, text

from database.models.dns_records import DnsRecord
from database.models.events import Event
from database.models.inboxes import Inbox
from database.session import session_scope
from domain.dns_records import service
from domain.dns_records.sweep import SweepStats, claim
from kit.time import utcnow
from maildns.resolver import Resolver
from scheduler.jobs.dns_verify import verify_due
from settings import Settings, get_settings
from tests.support.dns_gate import dns_gate
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace
from tests.support.nsd import Nsd, silent_nameserver
from tests.support.published import publish_inbox
from tests.support.zones import new_ip, rsa_public_key, unique_zone


def make_inboxes(count: int = 1, domain: str | None = None) -> list[uuid.UUID]:
    domain = domain or unique_zone("sweep")
    with session_scope() as session:
        workspace = create_workspace(session, create_tenant(session))
        server = create_server(session, workspace, hostname=f"mail.{domain}", ip_address=new_ip())
        ids = [
            create_inbox(session, workspace, email_address=f"u{i}@{domain}", server=server).id
            for i in range(count)
        ]
        service.generate_for_server(session, server, settings=get_settings())
    return ids


def publish(nsd: Nsd, inbox_id: uuid.UUID, **options: object) -> None:
    with session_scope() as session:
        publish_inbox(session, nsd, inbox_id, **options)


def sweep(address: tuple[str, int], **options: float) -> SweepStats:
    return verify_due(
        get_settings(),
        resolver_factory=lambda _: Resolver([address], timeout=options.get("timeout", 1.0)),
    )


def force_due() -> None:
    with session_scope() as session:
        session.execute(text("UPDATE dns_records SET next_check_at = now() - interval '1 second'"))


def inbox_state(inbox_id: uuid.UUID) -> tuple[str | None, dict[str, int]]:
    with session_scope() as session:
        status = session.get_one(Inbox, inbox_id).status
        counts: dict[str, int] = {}
        for event in session.scalars(select(Event).where(Event.subject_id == inbox_id)):
            counts[event.type] = counts.get(event.type, 0) + 1
    return status, counts


def statuses(inbox_id: uuid.UUID) -> dict[str, str | None]:
    with session_scope() as session:
        rows = session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox_id))
        return {r.purpose: r.verification_status for r in rows}


def test_sweep_readies_the_inbox_with_one_event(committed: Engine, nsd: Nsd) -> None:
    [inbox_id] = make_inboxes()
    publish(nsd, inbox_id)
    stats = sweep(nsd.address)
    assert stats.claimed == 10 and stats.verified == 10 and stats.inboxes_ready == 1
    assert inbox_state(inbox_id) == ("ready", {"dns.verified": 1, "inbox.ready": 1})

    assert sweep(nsd.address).claimed == 0  # verified records are not due again for a day
    force_due()
    assert sweep(nsd.address).claimed == 10
    assert inbox_state(inbox_id) == ("ready", {"dns.verified": 1, "inbox.ready": 1})
    with session_scope() as session:
        rows = session.scalars(select(DnsRecord).where(DnsRecord.inbox_id == inbox_id)).all()
        assert all(r.last_verified_at and r.next_check_at > utcnow() for r in rows)


def test_a_regression_records_an_event_and_recovery_readies_again(
    committed: Engine, nsd: Nsd
) -> None:
    [inbox_id] = make_inboxes()
    publish(nsd, inbox_id)
    sweep(nsd.address)
    with session_scope() as session:
        dkim = session.scalars(
            select(DnsRecord).where(DnsRecord.inbox_id == inbox_id, DnsRecord.purpose == "dkim")
        ).one()
        wrong = f'{dkim.record_name} IN TXT "v=DKIM1; k=rsa; p={rsa_public_key()[:200]}"'
    publish(nsd, inbox_id, replace={"dkim": wrong})
    force_due()
    stats = sweep(nsd.address)
    assert stats.inboxes_regressed == 1
    assert statuses(inbox_id)["dkim"] == "mismatch"
    assert inbox_state(inbox_id) == (
        "dns_pending",
        {"dns.verified": 1, "inbox.ready": 1, "dns.regressed": 1},
    )
    with session_scope() as session:
        event = session.scalars(
            select(Event).where(Event.subject_id == inbox_id, Event.type == "dns.regressed")
        ).one()
        assert event.data["records"][0]["purpose"] == "dkim" and "dkim" in event.message

    publish(nsd, inbox_id)
    force_due()
    sweep(nsd.address)
    assert inbox_state(inbox_id) == (
        "ready",
        {"dns.verified": 2, "inbox.ready": 2, "dns.regressed": 1},
    )


def test_an_unanswering_nameserver_never_demotes_verified_records(
    committed: Engine, nsd: Nsd
) -> None:
    [ready] = make_inboxes()
    publish(nsd, ready)
    sweep(nsd.address)
    [pending] = make_inboxes()
    force_due()
    with silent_nameserver() as address:
        stats = sweep(address, timeout=0.2)
    assert stats.errors == 20
    assert set(statuses(ready).values()) == {"verified"}
    assert inbox_state(ready) == ("ready", {"dns.verified": 1, "inbox.ready": 1})
    assert set(statuses(pending).values()) == {"error"}
    with session_scope() as session:
        details = session.scalars(select(DnsRecord.detail).where(DnsRecord.inbox_id == ready)).all()
        assert all(d and d.startswith("kept verified") and "timeout" in d for d in details)


def test_workers_never_claim_the_same_record(committed: Engine) -> None:
    make_inboxes(3)  # 30 records
    first_claim: list[set[uuid.UUID]] = []
    holding, release = threading.Event(), threading.Event()

    def worker_a() -> None:
        with session_scope() as session:
            first_claim.append({c.id for c in claim(session, 12, utcnow(), 300)})
            holding.set()
            release.wait(10)  # keep the transaction (and its row locks) open

    thread = threading.Thread(target=worker_a)
    thread.start()
    assert holding.wait(10)
    with session_scope() as session:
        second = {c.id for c in claim(session, 100, utcnow(), 300)}
    release.set()
    thread.join()
    assert len(first_claim[0]) == 12 and len(second) == 18
    assert not first_claim[0] & second
    with session_scope() as session:
        assert claim(session, 100, utcnow(), 300) == []  # claimed rows wait for their lease


def test_inboxes_of_one_domain_share_their_lookups(committed: Engine, nsd: Nsd) -> None:
    [single] = make_inboxes(1)
    publish(nsd, single)
    alone = sweep(nsd.address)
    many = make_inboxes(5)
    publish(nsd, many[0])
    shared = sweep(nsd.address)
    assert shared.claimed == 5 * alone.claimed and shared.verified == shared.claimed
    assert shared.queries == alone.queries


# Several processes: the sweep starts a helper once it claims a full batch; small batches give
# the helper (a spawned interpreter, a second or two to start) work left to take.
MANY = 120  # inboxes of one domain: 1,200 records, 120 batches of 10


def settings_for(address: tuple[str, int]) -> Settings:
    return get_settings().model_copy(
        update={"dns_nameservers": f"{address[0]}:{address[1]}", "dns_timeout_seconds": 1.0}
    )


def sweep_processes(address: tuple[str, int], processes: int) -> SweepStats:
    return verify_due(settings_for(address), batch_size=10, processes=processes)


def reset_all() -> None:
    with session_scope() as session:
        session.execute(
            text(
                "UPDATE dns_records SET next_check_at = now() - interval '1 second', "
                "verification_status = 'pending', detail = NULL, last_checked_at = NULL, "
                "last_verified_at = NULL"
            )
        )
        session.execute(text("UPDATE inboxes SET status = 'dns_pending'"))
        session.execute(text("DELETE FROM events"))


def under_claim() -> int:
    """Records claimed or checked since reset_all (their next check is in the future)."""
    with session_scope() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(DnsRecord)
                .where(DnsRecord.next_check_at > func.now())
            )
            or 0
        )


def outcome() -> tuple[list[tuple[str, str | None, str | None]], dict[str, int]]:
    """Every record's (purpose, status, detail), sorted, and the events by type."""
    with session_scope() as session:
        records = sorted(
            (r.purpose, r.verification_status, r.detail) for r in session.scalars(select(DnsRecord))
        )
        counts: dict[str, int] = {}
        for event in session.scalars(select(Event)):
            counts[event.type] = counts.get(event.type, 0) + 1
    return records, counts


def test_two_processes_check_each_record_once_with_the_single_process_results(
    committed: Engine, nsd: Nsd
) -> None:
    ready = make_inboxes(MANY)
    publish(nsd, ready[0])
    make_inboxes(3)  # a domain nsd does not serve: its records end in errors, not verified
    total = (MANY + 3) * 10

    alone = sweep_processes(nsd.address, 1)
    assert alone.workers == 1 and alone.per_process == [total]
    single = outcome()
    assert single[1] == {"dns.verified": MANY, "inbox.ready": MANY}

    # On a loaded machine the helper process may start only after the first has drained every
    # batch (CI saw [1230, 0]), which proves nothing about two processes sharing the claim. So
    # the answers are held at a relay until the helper has claimed a batch of its own: the
    # first process waits on its first batch meanwhile (a sweep claims ahead only once a
    # check has outlasted a claim, never before its first check), so more than one batch under
    # claim means the helper's claim. The long timeout keeps the held
    # answers from timing out; the outcome must still equal the single process's.
    reset_all()
    with dns_gate(nsd.address) as gate:
        settings = settings_for(gate.address).model_copy(update={"dns_timeout_seconds": 60.0})
        result: list[SweepStats] = []
        sweeping = threading.Thread(
            target=lambda: result.append(verify_due(settings, batch_size=10, processes=2))
        )
        sweeping.start()
        deadline = time.monotonic() + 90
        while under_claim() <= 10 and time.monotonic() < deadline and sweeping.is_alive():
            time.sleep(0.05)
        gate.open()
        sweeping.join(timeout=120)
    assert result, "the sweep did not finish"
    shared = result[0]
    assert shared.workers == 2 and shared.failed_workers == 0 and shared.failed_batches == 0
    # Each record claimed by exactly one process: a record taken twice would count twice.
    assert len(shared.per_process) == 2
    assert sum(shared.per_process) == shared.claimed == total
    assert all(shared.per_process), f"one process did every batch: {shared.per_process}"
    assert (shared.verified, shared.errors) == (alone.verified, alone.errors) == (MANY * 10, 30)
    # The details name the nameserver that answered: the relay here, nsd itself before.
    relay, direct = (f"{a[0]}:{a[1]}" for a in (gate.address, nsd.address))
    records, events = outcome()
    assert [(p, s, d and d.replace(relay, direct)) for p, s, d in records] == single[0]
    assert events == single[1]
    with session_scope() as session:
        unchecked = session.scalar(
            select(func.count()).select_from(DnsRecord).where(DnsRecord.last_checked_at.is_(None))
        )
    assert unchecked == 0


def test_a_failing_inbox_is_reported_by_whichever_process_wrote_it(
    committed: Engine, nsd: Nsd
) -> None:
    ids = make_inboxes(MANY)
    publish(nsd, ids[0])
    bad = ids[MANY // 2]
    with session_scope() as session:
        # A real failure in Postgres: every write of this inbox's records is refused.
        session.execute(
            text(
                "CREATE FUNCTION refuse_dns_write() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER refuse_dns_write BEFORE UPDATE ON dns_records FOR EACH ROW "
                f"WHEN (OLD.inbox_id = '{bad}' AND NEW.last_checked_at IS NOT NULL) "
                "EXECUTE FUNCTION refuse_dns_write()"
            )
        )
    try:
        stats = sweep_processes(nsd.address, 2)
    finally:
        with session_scope() as session:
            session.execute(text("DROP TRIGGER refuse_dns_write ON dns_records"))
            session.execute(text("DROP FUNCTION refuse_dns_write()"))
    assert stats.workers == 2 and stats.failed_workers == 0
    assert stats.skipped == [bad]
    assert stats.verified == (MANY - 1) * 10 and stats.inboxes_ready == MANY - 1
    assert set(statuses(bad).values()) == {"pending"}
    assert {statuses(i)["dkim"] for i in ids if i != bad} == {"verified"}


def test_a_helper_that_dies_costs_only_its_own_claim(committed: Engine, nsd: Nsd) -> None:
    ids = make_inboxes(MANY)
    publish(nsd, ids[0])
    result: list[SweepStats] = []
    thread = threading.Thread(target=lambda: result.append(sweep_processes(nsd.address, 2)))
    thread.start()
    deadline = time.monotonic() + 30
    helpers: list[multiprocessing.process.BaseProcess] = []
    while not helpers and time.monotonic() < deadline:
        helpers = [p for p in multiprocessing.active_children() if p.name == "dns.verify helper"]
        time.sleep(0.01)
    assert helpers, "the sweep started no helper"
    time.sleep(0.5)  # let it claim
    os.kill(helpers[0].pid or 0, signal.SIGKILL)
    thread.join(60)
    [stats] = result
    assert stats.workers == 2 and stats.failed_workers == 1
    with session_scope() as session:
        checked = session.scalar(
            select(func.count())
            .select_from(DnsRecord)
            .where(DnsRecord.last_checked_at.is_not(None))
        )
        leased = session.scalar(
            select(func.count())
            .select_from(DnsRecord)
            .where(DnsRecord.last_checked_at.is_(None), DnsRecord.next_check_at > utcnow())
        )
    # What the survivor checked is written; what the dead helper held waits for its lease.
    assert checked == stats.claimed and checked + leased == MANY * 10
    force_due()
    again = sweep_processes(nsd.address, 1)
    assert again.claimed == MANY * 10 and again.verified == MANY * 10
