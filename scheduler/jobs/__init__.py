"""The periodic jobs: one module per job, named after it (`dns_verify`, `monitoring_health`,
`webhooks_deliver`), each a short entry `run()` sequencing its feature's steps in short
transactions; this registry says how often each runs (APScheduler only decides when)."""

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
    from scheduler.jobs import dns_verify, monitoring_health, webhooks_deliver
    from settings import get_settings

    s = get_settings
    jobs: list[PeriodicJob] = []
    jobs.append(
        PeriodicJob(
            monitoring_health.NAME,
            monitoring_health.run,
            lambda: s().health_interval_seconds,
        )
    )
    jobs.append(
        PeriodicJob(
            webhooks_deliver.NAME,
            webhooks_deliver.run,
            lambda: s().webhook_interval_seconds,
        )
    )
    jobs.append(
        PeriodicJob(dns_verify.NAME, dns_verify.run, lambda: s().dns_verify_interval_seconds)
    )
    return [PeriodicJob(j.name, guarded(j.name, j.func), j.interval_seconds) for j in jobs]
