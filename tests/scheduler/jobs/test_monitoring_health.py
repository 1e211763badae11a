"""The monitoring.health sweep end to end: real servers on loopback, real Postgres commits, a real
webhook receiver. Alerts fire once per change of state and recoveries once when it clears."""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, text

from database.models.events import Event
from database.models.health import HealthCheckResult, HealthCheckState
from database.models.servers import VpsServer
from database.session import session_scope
from domain.health import service
from domain.webhooks import delivery, signing
from domain.webhooks import service as webhooks
from domain.webhooks.schemas import WebhookCreate
from probes.types import Check, ProbeConfig
from scheduler.jobs import monitoring_health, webhooks_deliver
from settings import get_settings
from tests.support.factories import create_server, create_tenant, create_workspace
from tests.support.loopback import Lab
from tests.support.pki import CertAuthority
from tests.support.probe_fleet import SimServer, config_for, restart_smtp, start_server
from tests.support.receiver import Receiver

HOST = "mx-sweep.example.test"
LOOPBACK = delivery.DeliveryOptions(timeout=5, backoff=0, allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fleet(committed: Engine, lab: Lab, ca: CertAuthority) -> dict[str, object]:
    """A live workspace with one real (loopback) server, a sandbox server and a provisioning one."""
    with session_scope() as s:
        tenant = create_tenant(s)
        live = create_workspace(s, tenant, sandbox=False)
        sandbox = create_workspace(s, tenant, sandbox=True)
        assert live.ssh_public_key
        sim = start_server(
            lab, ca, address="127.0.0.1", hostname=HOST, authorized_key=live.ssh_public_key
        )
        server = create_server(s, live, hostname=HOST, ip_address="127.0.0.1")
        server.ssh_port = sim.ports.ssh
        simulated = create_server(s, sandbox, ip_address="192.0.2.44")
        provisioning = create_server(s, live, ip_address="127.0.0.9", status="provisioning")
        ids = {
            "tenant": tenant.id,
            "server": server.id,
            "simulated": simulated.id,
            "provisioning": provisioning.id,
        }
    return {"ids": ids, "sim": sim}


def _events(kind: str, vps_id: uuid.UUID) -> list[Event]:
    with session_scope() as s:
        return list(
            s.scalars(
                select(Event)
                .where(Event.type == kind, Event.subject_id == vps_id)
                .order_by(Event.created_at)
            )
        )


def _server(vps_id: uuid.UUID) -> VpsServer:
    with session_scope() as s:
        server = s.get(VpsServer, vps_id)
        assert server is not None
        return server


def test_three_failing_sweeps_alert_once_and_recovery_is_reported_once(
    fleet: dict[str, object],
    ca: CertAuthority,
    receiver: Receiver,
    private_webhooks: None,
) -> None:
    ids = fleet["ids"]
    sim = fleet["sim"]
    assert isinstance(ids, dict) and isinstance(sim, SimServer)
    vps_id = ids["server"]
    with session_scope() as s:
        _, secret = webhooks.create(
            s,
            ids["tenant"],
            WebhookCreate(url=receiver.url, event_types=["health.*"]),
            settings=get_settings(),
        )
    config = config_for(sim.ports, ca)

    first = monitoring_health.run(get_settings(), config)
    assert (first.servers, first.probed, first.simulated, first.alerts) == (2, 1, 1, 0)
    server = _server(vps_id)
    assert (server.status, server.mail_server_status) == ("ready", "running")
    assert server.ssl_certificate_expires is not None

    sim.stop("smtp")
    for _ in range(3):
        monitoring_health.run(get_settings(), config)
    alerts = _events("health.alert", vps_id)
    assert len(alerts) == 1
    assert [c["check"] for c in alerts[0].data["checks"]] == ["mail_server"]
    assert alerts[0].data["checks"][0]["status"] == "critical"
    assert alerts[0].data["checks"][0]["previous"] == "ok"
    assert _server(vps_id).mail_server_status == "down"

    restart_smtp(sim, ca)
    last = monitoring_health.run(get_settings(), config)
    assert last.recoveries == 1
    recoveries = _events("health.recovered", vps_id)
    assert len(recoveries) == 1
    assert recoveries[0].data["checks"][0]["check"] == "mail_server"
    assert len(_events("health.alert", vps_id)) == 1
    assert _server(vps_id).mail_server_status == "running"

    with session_scope() as s:
        history = s.scalar(
            select(func.count())
            .select_from(HealthCheckResult)
            .where(HealthCheckResult.vps_id == vps_id)
        )
        assert history == 5 * len(Check)
        states = service.latest_for_server(s, vps_id)
        assert [st["check"] for st in states] == [c.value for c in Check]
        assert all(st["status"] == "ok" for st in states)

    report = webhooks_deliver.run(
        delivery.DeliveryOptions(timeout=5, backoff=0, allow_private=True)
    )
    assert report.delivered == 2
    # Deliveries run concurrently: receivers order by the event's time, not by arrival.
    bodies = sorted((json.loads(r.body) for r in receiver.requests), key=lambda b: b["created_at"])
    assert [b["type"] for b in bodies] == ["health.alert", "health.recovered"]
    assert {b["subject"]["id"] for b in bodies} == {str(vps_id)}
    for r in receiver.requests:
        assert signing.verify(secret, r.headers[signing.HEADER], r.body)
        assert not signing.verify("whsec_wrong", r.headers[signing.HEADER], r.body)
        assert not signing.verify(secret, r.headers[signing.HEADER], r.body + b" ")
    # Idempotent: a second run finds nothing new to send.
    assert (
        webhooks_deliver.run(
            delivery.DeliveryOptions(timeout=5, backoff=0, allow_private=True)
        ).attempted
        == 0
    )


def test_sandbox_servers_are_simulated_and_unmonitored_ones_untouched(
    fleet: dict[str, object], ca: CertAuthority
) -> None:
    ids = fleet["ids"]
    sim = fleet["sim"]
    assert isinstance(ids, dict) and isinstance(sim, SimServer)
    monitoring_health.run(get_settings(), config_for(sim.ports, ca))
    with session_scope() as s:
        states = service.latest_for_server(s, ids["simulated"])
        assert len(states) == len(Check)
        assert all(st["status"] == "ok" and st["data"] == {"simulated": True} for st in states)
        assert all("simulated" in st["detail"] for st in states)
        assert service.latest_for_server(s, ids["provisioning"]) == []
    assert _server(ids["provisioning"]).status == "provisioning"


def test_unreachable_server_status_follows_and_comes_back(
    fleet: dict[str, object], ca: CertAuthority, lab: Lab
) -> None:
    ids = fleet["ids"]
    sim = fleet["sim"]
    assert isinstance(ids, dict) and isinstance(sim, SimServer)
    with session_scope() as s:
        server = s.get(VpsServer, ids["server"])
        assert server is not None
        good_port = server.ssh_port
        _, silent = lab.hang()
        server.ssh_port = silent
    config = config_for(sim.ports, ca, timeout=0.5)
    report = monitoring_health.run(get_settings(), config)
    assert report.alerts == 1
    assert _server(ids["server"]).status == "unreachable"
    alert = _events("health.alert", ids["server"])[0]
    assert {c["check"]: c["status"] for c in alert.data["checks"]} == {"reachable": "critical"}
    with session_scope() as s:
        state = s.get(HealthCheckState, (ids["server"], "disk"))
        assert state is not None and state.status == "unknown"  # measured nothing: no alert
        server = s.get(VpsServer, ids["server"])
        assert server is not None
        server.ssh_port = good_port
    monitoring_health.run(get_settings(), config_for(sim.ports, ca))
    assert _server(ids["server"]).status == "ready"
    assert len(_events("health.recovered", ids["server"])) == 1


def test_retention_purges_old_history(fleet: dict[str, object], ca: CertAuthority) -> None:
    ids = fleet["ids"]
    sim = fleet["sim"]
    assert isinstance(ids, dict) and isinstance(sim, SimServer)
    config = ProbeConfig(checks=frozenset())
    monitoring_health.run(get_settings(), config)  # no checks: nothing stored
    monitoring_health.run(
        get_settings(), config_for(sim.ports, ca, checks=frozenset({Check.REACHABLE}))
    )
    with session_scope() as s:
        s.execute(
            HealthCheckResult.__table__.update().values(checked_at=func.now() - timedelta(days=40))
        )
    report = monitoring_health.run(
        get_settings(), config_for(sim.ports, ca, checks=frozenset({Check.REACHABLE}))
    )
    assert report.purged == 2  # the real server's and the sandbox server's old rows
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(HealthCheckResult)) == 2


def test_one_server_whose_results_cannot_be_written_is_skipped_not_the_sweep(
    committed: Engine,
) -> None:
    """A real database fault on one server's rows (a trigger rejecting its history inserts):
    its chunk falls back to server by server, the others' results are stored, and the report
    names the one skipped."""
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s), sandbox=True)
        ids = [create_server(s, ws, ip_address=f"192.0.2.{60 + i}").id for i in range(3)]
    bad = ids[1]
    with committed.begin() as conn:
        conn.execute(
            text(
                f"""
                CREATE FUNCTION reject_one() RETURNS trigger AS $$
                BEGIN
                  IF NEW.vps_id = '{bad}' THEN RAISE EXCEPTION 'injected'; END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER reject_one BEFORE INSERT ON health_check_results
                  FOR EACH ROW EXECUTE FUNCTION reject_one();
                """
            )
        )
    try:
        report = monitoring_health.run(get_settings())
    finally:
        with committed.begin() as conn:
            conn.execute(text("DROP TRIGGER reject_one ON health_check_results"))
            conn.execute(text("DROP FUNCTION reject_one()"))
    assert report.failed_servers == [bad]
    with session_scope() as s:
        stored = set(s.scalars(select(HealthCheckState.vps_id).distinct()))
    assert stored == set(ids) - {bad}


def test_a_batch_that_fails_once_is_retried_whole_and_the_sweep_goes_on(
    committed: Engine,
) -> None:
    """A real, passing database fault (a trigger rejecting the first history insert only: a
    sequence is not rolled back with it): the batch is tried again whole, every result is
    stored, nothing is reported skipped, and the retry is counted."""
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s), sandbox=True)
        ids = [create_server(s, ws, ip_address=f"192.0.2.{70 + i}").id for i in range(4)]
    with committed.begin() as conn:
        conn.execute(
            text(
                """
                CREATE SEQUENCE fail_once;
                CREATE FUNCTION fail_once() RETURNS trigger AS $$
                BEGIN
                  IF nextval('fail_once') = 1 THEN RAISE EXCEPTION 'injected, once'; END IF;
                  RETURN NULL;
                END $$ LANGUAGE plpgsql;
                CREATE TRIGGER fail_once BEFORE INSERT ON health_check_results
                  FOR EACH STATEMENT EXECUTE FUNCTION fail_once();
                """
            )
        )
    try:
        report = monitoring_health.run(get_settings())
    finally:
        with committed.begin() as conn:
            conn.execute(text("DROP TRIGGER fail_once ON health_check_results"))
            conn.execute(text("DROP FUNCTION fail_once()"))
            conn.execute(text("DROP SEQUENCE fail_once"))
    assert report.failed_servers == []
    assert report.batch_retries == 1
    with session_scope() as s:
        stored = s.scalar(
            select(func.count())
            .select_from(HealthCheckResult)
            .where(HealthCheckResult.vps_id.in_(ids))
        )
        states = set(s.scalars(select(HealthCheckState.vps_id).distinct()))
    assert stored == len(ids) * len(Check)
    assert states == set(ids)


def test_history_is_written_while_probing_goes_on_and_completely(
    fleet: dict[str, object], ca: CertAuthority, lab: Lab, committed: Engine
) -> None:
    """Sandbox servers' results (ready at once) are committed while a hung live server is
    still being probed, seen from another connection; at the end every server has every
    check, in more than one batch."""
    ids = fleet["ids"]
    sim = fleet["sim"]
    assert isinstance(ids, dict) and isinstance(sim, SimServer)
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s), sandbox=True)
        extra = [create_server(s, ws, ip_address=f"192.0.2.{80 + i}").id for i in range(5)]
        server = s.get(VpsServer, ids["server"])
        assert server is not None
        _, silent = lab.hang()
        server.ssh_port = silent  # the live server's reachable and disk checks hang
    timeout = 2.0
    seen: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        started = time.perf_counter()
        while not stop.is_set():
            with committed.connect() as conn:
                rows = conn.scalar(text("SELECT count(*) FROM health_check_results"))
            if rows:
                seen.append(time.perf_counter() - started)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        report = monitoring_health.run(
            get_settings(), config_for(sim.ports, ca, timeout=timeout), batch_size=2
        )
    finally:
        stop.set()
        watcher.join()
    assert seen and seen[0] < timeout / 2, (seen, report)  # long before the hung checks end
    assert report.seconds >= timeout
    assert report.batches >= 3 and report.failed_servers == []
    every = [ids["server"], ids["simulated"], *extra]
    with session_scope() as s:
        rows = s.execute(
            select(HealthCheckResult.vps_id, func.count())
            .where(HealthCheckResult.vps_id.in_(every))
            .group_by(HealthCheckResult.vps_id)
        ).all()
    assert dict(rows) == {vps_id: len(Check) for vps_id in every}
