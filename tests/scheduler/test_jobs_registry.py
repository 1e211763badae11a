"""The job registry and `guarded` (scheduler.jobs): which jobs run how often, and what a failing
run leaves behind (a logged traceback, or one outage line while the database is down)."""

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import OperationalError

from database.outage import outage
from scheduler.jobs import guarded, registry
from settings import get_settings


@pytest.fixture
def no_outage() -> Iterator[None]:
    outage.recovered()
    yield
    outage.recovered()


def test_registry_names_the_jobs_with_positive_intervals_from_settings() -> None:
    s = get_settings()
    jobs = {job.name: job for job in registry(s)}
    assert set(jobs) == {
        "dns.verify",
        "monitoring.health",
        "webhooks.deliver",
        "idempotency.purge",
        "inbox.warmup",
        "reputation.fetch",
    }
    assert jobs["inbox.warmup"].interval_seconds == s.warmup_interval_seconds
    assert jobs["reputation.fetch"].interval_seconds == s.reputation_fetch_interval_seconds
    # The sweep looks for due records often (the fast path after a publish); only due ones.
    assert jobs["dns.verify"].interval_seconds == min(
        s.dns_verify_interval_seconds, s.dns_fast_poll_seconds
    )
    assert jobs["monitoring.health"].interval_seconds == s.health_interval_seconds
    assert jobs["webhooks.deliver"].interval_seconds == s.webhook_interval_seconds
    for job in jobs.values():
        assert job.interval_seconds > 0
        assert callable(job.func)


def test_registry_takes_its_intervals_from_the_settings_it_is_given() -> None:
    given = get_settings().model_copy(
        update={
            "webhook_interval_seconds": 42,
            "dns_verify_interval_seconds": 7,
            "dns_fast_poll_seconds": 30,
        }
    )
    jobs = {job.name: job for job in registry(given)}
    assert jobs["webhooks.deliver"].interval_seconds == 42
    assert jobs["dns.verify"].interval_seconds == 7


def test_guarded_returns_the_result_of_a_run_that_succeeds() -> None:
    assert guarded("test.ok", lambda: 7)() == 7


def test_a_plain_error_is_logged_with_the_job_name_and_a_traceback(
    caplog: pytest.LogCaptureFixture, no_outage: None
) -> None:
    def broken() -> object:
        raise RuntimeError("boom in the sweep")

    caplog.set_level(logging.INFO)
    run = guarded("test.broken", broken)
    assert run() is None
    failures = [r for r in caplog.records if "test.broken" in r.getMessage()]
    assert len(failures) == 1
    record = failures[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert "boom in the sweep" in caplog.text
    assert "Traceback" in caplog.text
    # A plain bug is not an outage.
    assert not outage.down
    assert "database unavailable" not in caplog.text


def test_a_database_outage_is_logged_once_without_a_traceback(
    caplog: pytest.LogCaptureFixture, no_outage: None
) -> None:
    unreachable = create_engine("postgresql+psycopg://u@127.0.0.1:1/x", poolclass=pool.NullPool)
    calls: list[type[BaseException]] = []

    def sweep() -> object:
        try:
            with unreachable.connect():
                pass
        except BaseException as exc:
            calls.append(type(exc))
            raise
        return "connected?"

    caplog.set_level(logging.INFO)
    run = guarded("test.sweep", sweep)
    try:
        assert run() is None
        assert run() is None
    finally:
        unreachable.dispose()
    assert calls == [OperationalError, OperationalError]
    unavailable = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(unavailable) == 1
    assert outage.down
    assert all(r.exc_info is None for r in caplog.records)
    assert "Traceback" not in caplog.text
    assert "test.sweep failed" not in caplog.text
