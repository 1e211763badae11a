"""scheduler.runner.Runner: schedules every registered job and starts the background services;
stop() ends them and releases wait(). Runner takes no registry, so this runs the real one (the
sweeps find nothing to do in the emptied test database)."""

import logging
import threading

import pytest
from sqlalchemy import Engine

from scheduler.jobs import registry
from scheduler.runner import Runner
from settings import get_settings
from tests.support.fixtures import OverrideSettings


@pytest.fixture
def one_worker(override_settings: OverrideSettings) -> None:
    override_settings(worker_threads=1)


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("operation-worker-")]


def test_start_schedules_every_job_and_stop_ends_everything(
    committed: Engine, one_worker: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler.runner")
    runner = Runner(get_settings())
    runner.start()
    try:
        threads = _worker_threads()
        assert len(threads) == 1 and threads[0].is_alive()
    finally:
        runner.stop()
    scheduled = {r.getMessage() for r in caplog.records if r.name == "scheduler.runner"}
    for job in registry(get_settings()):
        assert f"scheduled {job.name} every {job.interval_seconds}s" in scheduled
    assert not threads[0].is_alive()

    waiter = threading.Thread(target=runner.wait, daemon=True)
    waiter.start()
    waiter.join(timeout=30)  # a bound, not a timing assertion: wait() must return after stop()
    assert not waiter.is_alive()
    failures = [r for r in caplog.records if r.name == "scheduler.jobs"]
    assert failures == []
