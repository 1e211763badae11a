"""The periodic jobs, in one registry. A job is a plain callable that opens its own short
transactions; APScheduler only decides when it runs."""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from database.outage import classify, outage, reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: Callable[[], object]
    interval_seconds: Callable[[], float]


def guarded(name: str, func: Callable[[], object]) -> Callable[[], object]:
    """A run that fails is logged and the next one runs on schedule; while the database is
    down, the outage is logged once (database.outage), not a traceback per run."""

    @functools.wraps(func)
    def run() -> object:
        try:
            return func()
        except Exception as exc:
            if classify(exc) == "outage":
                outage.failed(reason(exc))
            else:
                log.exception("%s failed; it runs again at its next interval", name)
            return None

    return run


def registry() -> list[PeriodicJob]:
    """Imported lazily so `penguinmails api` never loads sweep code it does not run."""
    from domain.dns_records import sweep as dns_sweep
    from domain.health import sweep
    from domain.webhooks import delivery
    from settings import get_settings

    jobs: list[PeriodicJob] = []
    jobs.append(
        PeriodicJob("monitoring.health", sweep.job, lambda: get_settings().health_interval_seconds)
    )
    jobs.append(
        PeriodicJob(
            "webhooks.deliver", delivery.job, lambda: get_settings().webhook_interval_seconds
        )
    )
    jobs.append(
        PeriodicJob(
            "dns.verify", dns_sweep.run_job, lambda: get_settings().dns_verify_interval_seconds
        )
    )
    return [PeriodicJob(j.name, guarded(j.name, j.func), j.interval_seconds) for j in jobs]
