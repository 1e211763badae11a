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
    jobs: list[PeriodicJob] = []
    return jobs
