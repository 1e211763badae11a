"""The process's own Prometheus metrics (prometheus-client's default registry): what this
process observed as it ran. What the database knows (queues, records, checks, deliveries) is
read at scrape time instead (`domain.metrics.service`), so every replica reports the same."""

from typing import Any

from prometheus_client import Histogram, disable_created_metrics

# `_created` series (one timestamp per label set) double the scrape and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

REQUEST_SECONDS = Histogram(
    "penguinmails_http_request_duration_seconds",
    "API and console request latency, by route template, method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SWEEP_SECONDS = Histogram(
    "penguinmails_sweep_duration_seconds",
    "Duration of one run of a periodic job (dns.verify, monitoring.health, webhooks.deliver, "
    "idempotency.purge) in this process.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
SWEEP_BATCH = Histogram(
    "penguinmails_sweep_batch_size",
    "Rows one run of a periodic job handled (records claimed, servers checked, deliveries "
    "attempted, keys purged).",
    ["job"],
    buckets=(0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)


def batch_size(result: Any) -> int | None:
    """How many rows a job's report says it handled, or None when it says nothing."""
    if isinstance(result, bool) or result is None:
        return None
    if isinstance(result, int):
        return result
    for name in ("claimed", "servers", "attempted"):
        value = getattr(result, name, None)
        if isinstance(value, int):
            return value
    return None
