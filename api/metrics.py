"""`GET /metrics` in the Prometheus text format, behind `PENGUINMAILS_METRICS_TOKEN` (a bearer
token; unset, the endpoint is off and answers 404), and the timing of every request by route.

What this process observed (request latency, sweep durations and batch sizes) comes from
prometheus-client's default registry (`kit.metrics`); what the database knows is read at
scrape time (`domain.metrics.service.snapshot`), in the request's one short transaction."""

import hmac
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import SessionDep, SettingsDep
from api.retry import RetryingRoute
from domain.metrics import service
from domain.metrics.service import RUN_BUCKETS, Snapshot
from kit.errors import NotFound, Unauthorized
from kit.metrics import REQUEST_SECONDS
from kit.time import utcnow

router = APIRouter(route_class=RetryingRoute, tags=["metrics"])
RUN_WINDOW = timedelta(hours=1)


class _Database(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        s = self.snap
        ops = GaugeMetricFamily(
            "penguinmails_operations", "Operations by kind and status.", labels=["kind", "status"]
        )
        for (kind, status), n in sorted(s.operations.items()):
            ops.add_metric([kind, status], n)
        yield ops
        age = GaugeMetricFamily(
            "penguinmails_operations_queue_age_seconds",
            "How long the oldest queued operation of each kind has been due.",
            labels=["kind"],
        )
        for kind, seconds in sorted(s.queue_age_seconds.items()):
            age.add_metric([kind], seconds)
        yield age
        runs = HistogramMetricFamily(
            "penguinmails_operation_run_duration_seconds",
            "Run time (started to finished) of operations finished in the last hour, by kind "
            "and final status.",
            labels=["kind", "status"],
        )
        for (kind, status), d in sorted(s.run_durations.items()):
            bounds = [str(b) for b in RUN_BUCKETS] + ["+Inf"]
            runs.add_metric(
                [kind, status], list(zip(bounds, d.buckets, strict=True)), d.total_seconds
            )
        yield runs
        records = GaugeMetricFamily(
            "penguinmails_dns_records", "DNS records by verification state.", labels=["state"]
        )
        for state, n in sorted(s.dns_records.items()):
            records.add_metric([state], n)
        yield records
        checks = GaugeMetricFamily(
            "penguinmails_health_checks",
            "Servers' latest health check results by check and state.",
            labels=["check", "state"],
        )
        for (check, state), n in sorted(s.health_checks.items()):
            checks.add_metric([check, state], n)
        yield checks
        deliveries = GaugeMetricFamily(
            "penguinmails_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
        )
        for status, n in sorted(s.webhook_deliveries.items()):
            deliveries.add_metric([status], n)
        yield deliveries
        yield GaugeMetricFamily(
            "penguinmails_webhook_delivery_lag_seconds",
            "Age of the oldest webhook delivery that is due and not yet delivered.",
            value=s.webhook_lag_seconds,
        )
        yield GaugeMetricFamily(
            "penguinmails_webhook_deliveries_failing",
            "Pending deliveries whose attempts so far failed (they are being retried).",
            value=s.webhook_failing_attempts,
        )


@router.get(
    "/metrics",
    include_in_schema=False,
    summary="Prometheus metrics (Authorization: Bearer PENGUINMAILS_METRICS_TOKEN)",
)
def metrics(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    if settings.metrics_token is None:
        raise NotFound("metrics are off: set PENGUINMAILS_METRICS_TOKEN")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
    if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
        raise Unauthorized("send 'Authorization: Bearer <PENGUINMAILS_METRICS_TOKEN>'")
    database = CollectorRegistry(auto_describe=False)
    database.register(_Database(service.snapshot(session, utcnow(), RUN_WINDOW)))
    body = generate_latest(REGISTRY) + generate_latest(database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def route_template(scope: Scope) -> str:
    """The matched route's template with the prefixes of the routers it was included in
    (FastAPI keeps included routers nested: the route knows only its own path)."""
    path: str = scope["path"]
    own = getattr(scope.get("route"), "path", None)
    if not isinstance(own, str):
        return "/console/static" if path.startswith("/console/static/") else "unmatched"
    params = scope.get("path_params", {})
    concrete = _PARAM.sub(lambda m: str(params.get(m.group(1), m.group(0))), own)
    if concrete and path.endswith(concrete):
        return path[: len(path) - len(concrete)] + own
    return own


class RequestTimer:
    """Pure ASGI: the latency of every HTTP request, labelled by its route template
    (`/api/v1/inboxes/{inbox_id}`, never the id), method and status. Unmatched paths are one
    label, so a scan of random URLs cannot grow the series."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUEST_SECONDS.labels(route_template(scope), scope["method"], str(status)).observe(
                time.perf_counter() - start
            )
