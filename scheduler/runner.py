"""Runs the registered periodic jobs (APScheduler) and the background workers in this process."""

import logging
import threading
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from kit.time import utcnow
from scheduler.jobs import registry
from settings import Settings

log = logging.getLogger(__name__)


class Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def background_services(settings: Settings) -> list[Service]:
    """Long-running loops beside the periodic jobs (operation workers)."""
    from scheduler.workers import OperationWorkers

    return [OperationWorkers(settings)]


class Runner:
    """The periodic jobs and the operation workers of one process, given its settings by the
    process launcher (`cli.processes`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._services = background_services(settings)
        self._stopped = threading.Event()

    def start(self) -> None:
        for job in registry(self._settings):
            self._scheduler.add_job(
                job.func,
                "interval",
                seconds=job.interval_seconds,
                id=job.name,
                name=job.name,
                max_instances=1,
                coalesce=True,
                # Run the first sweep right away rather than one interval after start-up.
                next_run_time=utcnow(),
            )
            log.info("scheduled %s every %ss", job.name, job.interval_seconds)
        self._scheduler.start()
        for service in self._services:
            service.start()

    def stop(self) -> None:
        for service in self._services:
            service.stop()
        self._scheduler.shutdown(wait=True)
        self._stopped.set()

    def wait(self) -> None:
        self._stopped.wait()
