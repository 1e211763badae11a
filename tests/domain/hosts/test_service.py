"""Worker heartbeat rows: upserted idempotently, never moved backwards, pruned when stale,
removed on a clean stop; and `OperationWorkers` writing them as a real process would."""

from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from database.models.hosts import WorkerHost
from database.session import session_scope
from domain.hosts import service as hosts
from kit.time import utcnow


def _beat(session: Session, host: str, seen: object, pid: int = 1) -> None:
    started = utcnow().replace(microsecond=0) - timedelta(days=1)
    hosts.beat(
        session,
        host=host,
        pid=pid,
        started_at=started,
        now=seen,  # type: ignore[arg-type]
        pulumi_backend="postgres",
        backend_local=False,
    )


def test_beat_is_an_idempotent_upsert_that_only_moves_forward(session: Session) -> None:
    now = utcnow()
    _beat(session, "a", now)
    _beat(session, "a", now)
    _beat(session, "a", now - timedelta(seconds=30))  # a late, older beat
    rows = session.scalars(select(WorkerHost)).all()
    assert len(rows) == 1 and rows[0].last_seen_at == now
    _beat(session, "a", now + timedelta(seconds=10))
    session.expire_all()
    assert session.scalars(select(WorkerHost)).one().last_seen_at == now + timedelta(seconds=10)


def test_prune_and_registered_go_by_age(session: Session) -> None:
    now = utcnow()
    _beat(session, "fresh", now)
    _beat(session, "stale", now - timedelta(minutes=10))
    assert [r.host for r in hosts.registered(session, since=now - timedelta(minutes=2))] == [
        "fresh"
    ]
    assert hosts.prune(session, before=now - timedelta(minutes=2)) == 1
    assert hosts.prune(session, before=now - timedelta(minutes=2)) == 0
    assert [r.host for r in session.scalars(select(WorkerHost))] == ["fresh"]


def test_worker_processes_register_beat_and_leave(
    committed: Engine, override_settings: object
) -> None:
    from scheduler.workers import OperationWorkers
    from settings import get_settings

    override_settings(host_name="host-one", worker_threads=1, host_stale_seconds=60)  # type: ignore[operator]
    with session_scope() as s:
        _beat(s, "long-gone", utcnow() - timedelta(minutes=5))
    workers = OperationWorkers(get_settings())
    workers.start()
    try:
        with session_scope() as s:
            rows = s.scalars(select(WorkerHost)).all()
            # Registered at start (before any claim), the stale row pruned by the same beat.
            assert [(r.host, r.pid, r.pulumi_backend, r.backend_local) for r in rows] == [
                ("host-one", workers.pid, "postgres", False)
            ]
            first = rows[0].last_seen_at
        workers.beat()
        with session_scope() as s:
            again = s.scalars(select(WorkerHost)).one()
            assert again.last_seen_at >= first
    finally:
        workers.stop()
    with session_scope() as s:
        assert s.scalars(select(WorkerHost)).all() == []


def test_a_process_without_worker_threads_does_not_register(
    committed: Engine, override_settings: object
) -> None:
    from scheduler.workers import OperationWorkers
    from settings import get_settings

    override_settings(worker_threads=0)  # type: ignore[operator]
    workers = OperationWorkers(get_settings())
    workers.start()
    workers.stop()
    with session_scope() as s:
        assert s.scalars(select(WorkerHost)).all() == []
