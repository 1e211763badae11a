"""`webhooks.deliver`: fan events out to endpoints, claim due deliveries, send them with a
per-request deadline and bounded concurrency (`domain.webhooks.delivery.send_all`), record every
attempt, each step a short transaction. A dead or slow endpoint costs at most `timeout` per
claimed delivery and never holds a transaction or another tenant's turn."""

import asyncio
import logging

from database.session import session_scope
from domain.webhooks import service
from domain.webhooks.delivery import DeliveryOptions, DeliveryReport, send_all
from kit.time import utcnow

log = logging.getLogger(__name__)
NAME = "webhooks.deliver"


def run(options: DeliveryOptions) -> DeliveryReport:
    """`registry` passes the options drawn from the process's settings; tests pass their own."""
    report = DeliveryReport()
    try:  # deliveries already in the outbox go out even if fanning out new ones fails
        with session_scope() as session:
            service.forget_expired_secrets(session, utcnow())
            fanned = service.fan_out(session, utcnow(), options.window)
        report.fanned_out = fanned.inserted
        report.skipped += fanned.skipped
    except Exception:
        log.exception("webhooks.deliver: fan-out failed")
    while True:
        with session_scope() as session:
            jobs = service.claim(
                session,
                utcnow(),
                batch=options.batch,
                per_endpoint=options.per_endpoint,
                lease=options.lease,
            )
        if not jobs:
            break
        outcomes = asyncio.run(send_all(jobs, options))
        with session_scope() as session:
            recorded = service.record(
                session,
                outcomes,
                utcnow(),
                max_attempts=options.max_attempts,
                base=options.backoff,
                cap=options.backoff_max,
                disable_after=options.disable_after,
            )
        report.disabled += recorded.disabled
        report.skipped += recorded.skipped
        report.attempted += len(outcomes)
        report.delivered += sum(o.ok for o in outcomes)
        report.failed += sum(not o.ok for o in outcomes)
        if len(jobs) < options.batch:
            break
    if report.skipped:
        log.warning("webhooks.deliver skipped %d row(s): %s", len(report.skipped), report.skipped)
    if report.attempted or report.skipped:
        log.info("webhooks.deliver: %s", report)
    return report
