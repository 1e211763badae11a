"""The periodic jobs, in one registry. A job is a plain callable that opens its own short
transactions; APScheduler only decides when it runs."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: Callable[[], object]
    interval_seconds: Callable[[], float]


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
    return jobs
