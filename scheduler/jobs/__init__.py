"""The periodic jobs: one module per job, named after it (`dns_verify`, `monitoring_health`,
`webhooks_deliver`, `idempotency_purge`, `inbox_warmup`, `reputation_fetch`), each a short
entry `run()` sequencing its feature's steps in short transactions; this registry says how
often each runs (APScheduler only decides when)."""

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from database.outage import classify, outage, reason
from kit.metrics import SWEEP_BATCH, SWEEP_SECONDS, batch_size
from settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    func: Callable[[], object]
    interval_seconds: float


def guarded(name: str, func: Callable[[], object]) -> Callable[[], object]:
    """A run that fails is logged and the next one runs on schedule; while the database is
    down, the outage is logged once (database.outage), not a traceback per run."""

    @functools.wraps(func)
    def run() -> object:
        start = time.perf_counter()
        try:
            result = func()
            size = batch_size(result)
            if size is not None:
                SWEEP_BATCH.labels(name).observe(size)
            return result
        except Exception as exc:
            if classify(exc) == "outage":
                outage.failed(reason(exc))
            else:
                log.exception("%s failed; it runs again at its next interval", name)
            return None
        finally:
            SWEEP_SECONDS.labels(name).observe(time.perf_counter() - start)

    return run


def registry(settings: Settings) -> list[PeriodicJob]:
    """Every job bound to the process's settings. Imported lazily so `penguinmails api` never
    loads sweep code it does not run."""
    from domain.webhooks.delivery import DeliveryOptions
    from scheduler.jobs import (
        dns_verify,
        idempotency_purge,
        inbox_warmup,
        monitoring_health,
        reputation_fetch,
        webhooks_deliver,
    )

    jobs = [
        PeriodicJob(
            monitoring_health.NAME,
            lambda: monitoring_health.run(settings),
            settings.health_interval_seconds,
        ),
        PeriodicJob(
            webhooks_deliver.NAME,
            lambda: webhooks_deliver.run(DeliveryOptions.from_settings(settings)),
            settings.webhook_interval_seconds,
        ),
        PeriodicJob(
            dns_verify.NAME,
            lambda: dns_verify.run(settings),
            # It checks only records that are due, so looking often is cheap, and the fast
            # path after a publish (checks within seconds) needs it.
            min(settings.dns_verify_interval_seconds, settings.dns_fast_poll_seconds),
        ),
        PeriodicJob(
            idempotency_purge.NAME,
            lambda: idempotency_purge.run(settings),
            idempotency_purge.interval_seconds(settings),
        ),
        PeriodicJob(
            inbox_warmup.NAME,
            lambda: inbox_warmup.run(settings),
            settings.warmup_interval_seconds,
        ),
        PeriodicJob(
            reputation_fetch.NAME,
            lambda: reputation_fetch.run(settings),
            settings.reputation_fetch_interval_seconds,
        ),
    ]
    return [PeriodicJob(j.name, guarded(j.name, j.func), j.interval_seconds) for j in jobs]
