"""The `webhooks.deliver` job: fan events out to endpoints, claim due deliveries, POST them with a
per-request deadline and bounded concurrency, record every attempt. A dead or slow endpoint costs
at most `timeout` per claimed delivery and never holds a transaction or another tenant's turn.

Whatever goes wrong with one delivery (a URL no request can be built for, the guard's
resolution, headers, signing, the request) fails that delivery only: an attempt with the error,
retried with backoff, then dead; the job itself never stops for one tenant's endpoint."""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from domain.webhooks import guard, signing
from domain.webhooks.service import Job, Outcome, Skipped
from kit.time import utcnow
from settings import Settings

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
    disable_after: int = 50

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery is held: past the attempt's deadline, with room."""
        return timedelta(seconds=self.timeout * 2 + 30)

    @classmethod
    def from_settings(cls, s: Settings) -> "DeliveryOptions":
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
            disable_after=s.webhook_disable_after_failures,
        )


@dataclass
class DeliveryReport:
    fanned_out: int = 0
    attempted: int = 0
    delivered: int = 0
    failed: int = 0
    disabled: list[uuid.UUID] = field(default_factory=list)
    # Rows a step could not handle (each also logged with its id); the rest went on.
    skipped: list[Skipped] = field(default_factory=list)


def headers(job: Job, now: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.HEADER: signing.sign(
            job.secret, job.body, int(now.timestamp()), previous=job.previous_secret
        ),
        "PenguinMails-Event-Id": str(job.event_id),
        "PenguinMails-Event-Type": job.event_type,
        "PenguinMails-Delivery-Id": str(job.delivery_id),
        "PenguinMails-Delivery-Attempt": str(job.attempt),
    }


async def attempt(
    client: httpx.AsyncClient, job: Job, options: DeliveryOptions
) -> tuple[int | None, str | None]:
    """One POST: (status code, error). Never raises (except cancellation)."""
    if job.problem is not None:
        return None, job.problem
    try:
        url = guard.usable_url(job.url)
        host = url.raw_host.decode("ascii")
        async with asyncio.timeout(options.timeout):  # the guard's resolution included
            if not options.allow_private:
                internal = await guard.resolved_internal(host)
                if internal is not None:
                    return None, f"refused: {host} is internal ({internal})"
            response = await client.post(url, content=job.body, headers=headers(job, utcnow()))
    except guard.UnusableURL as exc:
        return None, f"unusable URL: {exc}"
    except TimeoutError:
        return None, f"timed out after {options.timeout:g}s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    except Exception as exc:
        log.warning(
            "webhook delivery %s (endpoint %s) failed: %r",
            job.delivery_id,
            job.endpoint_id,
            exc,
            exc_info=True,
        )
        return None, f"delivery failed: {type(exc).__name__}: {exc}"[:500]
    code = response.status_code
    return code, None if 200 <= code < 300 else f"HTTP {code}"


async def send_all(jobs: list[Job], options: DeliveryOptions) -> list[Outcome]:
    slots = asyncio.Semaphore(options.concurrency)
    limits = httpx.Limits(max_connections=options.concurrency)
    async with httpx.AsyncClient(
        timeout=options.timeout, follow_redirects=False, limits=limits, trust_env=False
    ) as client:

        async def one(job: Job) -> Outcome:
            async with slots:
                started = time.perf_counter()
                code, error = await attempt(client, job, options)
                return Outcome(job, code, error, (time.perf_counter() - started) * 1000)

        return list(await asyncio.gather(*(one(j) for j in jobs)))
