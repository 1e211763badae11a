"""The `webhooks.deliver` job: fan events out to endpoints, claim due deliveries, POST them with a
per-request deadline and bounded concurrency, record every attempt. A dead or slow endpoint costs
at most `timeout` per claimed delivery and never holds a transaction or another tenant's turn."""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from database.session import session_scope
from domain.webhooks import guard, service, signing
from domain.webhooks.service import Job, Outcome
from kit.time import utcnow
from settings import Settings, get_settings

log = logging.getLogger(__name__)
USER_AGENT = "PenguinMails-Webhooks/1"


@dataclass(frozen=True)
class DeliveryOptions:
    timeout: float = 10.0
    max_attempts: int = 8
    backoff: float = 30.0
    backoff_max: float = 3600.0
    batch: int = 200
    per_endpoint: int = 20
    concurrency: int = 50
    window: timedelta = timedelta(hours=24)
    allow_private: bool = False

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> "DeliveryOptions":
        s = s or get_settings()
        return cls(
            timeout=s.webhook_timeout_seconds,
            max_attempts=s.webhook_max_attempts,
            backoff=s.webhook_backoff_seconds,
            backoff_max=s.webhook_backoff_max_seconds,
            batch=s.webhook_batch_size,
            per_endpoint=s.webhook_per_endpoint_batch,
            concurrency=s.webhook_concurrency,
            window=timedelta(hours=s.webhook_fanout_window_hours),
            allow_private=s.webhook_allow_private_urls,
        )


@dataclass
class DeliveryReport:
    fanned_out: int = 0
    attempted: int = 0
    delivered: int = 0
    failed: int = 0


def headers(job: Job, now: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.HEADER: signing.sign(job.secret, job.body, int(now.timestamp())),
        "PenguinMails-Event-Id": str(job.event_id),
        "PenguinMails-Event-Type": job.event_type,
        "PenguinMails-Delivery-Id": str(job.delivery_id),
        "PenguinMails-Delivery-Attempt": str(job.attempt),
    }


async def send_all(jobs: list[Job], options: DeliveryOptions) -> list[Outcome]:
    slots = asyncio.Semaphore(options.concurrency)
    limits = httpx.Limits(max_connections=options.concurrency)
    async with httpx.AsyncClient(
        timeout=options.timeout, follow_redirects=False, limits=limits, trust_env=False
    ) as client:

        async def one(job: Job) -> Outcome:
            async with slots:
                started = time.perf_counter()
                code: int | None
                error: str | None
                internal = None
                if not options.allow_private:
                    internal = await guard.resolved_internal(httpx.URL(job.url).host)
                if internal is not None:
                    ms = (time.perf_counter() - started) * 1000
                    refused = f"refused: {httpx.URL(job.url).host} is internal ({internal})"
                    return Outcome(job, None, refused, ms)
                try:
                    async with asyncio.timeout(options.timeout):
                        response = await client.post(
                            job.url, content=job.body, headers=headers(job, utcnow())
                        )
                except TimeoutError:
                    code, error = None, f"timed out after {options.timeout:g}s"
                except httpx.HTTPError as exc:
                    code, error = None, f"{type(exc).__name__}: {exc}"[:500]
                else:
                    code = response.status_code
                    error = None if 200 <= code < 300 else f"HTTP {code}"
                ms = (time.perf_counter() - started) * 1000
                return Outcome(job, code, error, ms)

        return list(await asyncio.gather(*(one(j) for j in jobs)))


def run(options: DeliveryOptions | None = None) -> DeliveryReport:
    options = options or DeliveryOptions.from_settings()
    report = DeliveryReport()
    lease = timedelta(seconds=options.timeout * 2 + 30)
    with session_scope() as session:
        report.fanned_out = service.fan_out(session, utcnow(), options.window)
    while True:
        with session_scope() as session:
            jobs = service.claim(
                session,
                utcnow(),
                batch=options.batch,
                per_endpoint=options.per_endpoint,
                lease=lease,
            )
        if not jobs:
            break
        outcomes = asyncio.run(send_all(jobs, options))
        with session_scope() as session:
            service.record(
                session,
                outcomes,
                utcnow(),
                max_attempts=options.max_attempts,
                base=options.backoff,
                cap=options.backoff_max,
            )
        report.attempted += len(outcomes)
        report.delivered += sum(o.ok for o in outcomes)
        report.failed += sum(not o.ok for o in outcomes)
        if len(jobs) < options.batch:
            break
    if report.attempted:
        log.info("webhooks.deliver: %s", report)
    return report


def job() -> DeliveryReport:
    return run()
