"""The server's own delivery counters, from Stalwart's Prometheus endpoint (both generations).

Read in stalwartlabs/stalwart (v0.12.0, v0.15.5, v0.16.18):
- `GET /metrics/prometheus` (crates/http/src/request.rs), `text/plain; version=0.0.4`, served
  only when Prometheus metrics are enabled (v0.12-v0.15 `metrics.prometheus.enable`, v0.16 the
  `Metrics` singleton's `prometheus` `Enabled`; otherwise the path is not found) and, with
  `auth.username`/`authUsername` set, only to that Basic user (anything else: auth failed).
  The stack enables it with the admin credentials the probes already hold (stacks/scripts.py).
- crates/common/src/telemetry/metrics/prometheus.rs: one counter per event type, named by its
  id with every non-alphanumeric as `_`, only when non-zero, counting since the process started
  (crates/trc/src/ipc/metrics.rs `EVENT_COUNTERS`: a restart sets them back to zero).
- The counters read (all in `is_metric` / `MetricType`): `delivery.delivered` (a recipient
  accepted by the remote server, smtp/src/outbound/session.rs), `delivery.dsn-perm-fail` (a
  recipient failed permanently: a bounce, smtp/src/queue/dsn.rs `log_dsn`) and
  `delivery.dsn-temp-fail` (a recipient still deferred when its delay notice is due).

The result is `ok` with the raw counters in `data`; it never alerts by itself. Rates over a
window are computed from the stored samples (domain/reputation/delivery.py), which also handles
restarts."""

from __future__ import annotations

import base64
import re
import ssl

from probes import stalwart_api
from probes.https import HttpsConnection
from probes.net import describe, http_request
from probes.types import Check, CheckResult, Status, Target

PATH = "/metrics/prometheus"
COUNTERS = {
    "delivered": "delivery_delivered",
    "bounced": "delivery_dsn_perm_fail",
    "deferred": "delivery_dsn_temp_fail",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse(text: str) -> dict[str, int]:
    """The counters of a Prometheus text exposition (comments skipped; label sets summed); an
    absent counter is 0, as Stalwart leaves zero counters out."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None or line.startswith("#"):
            continue
        try:
            number = float(match.group(3))
        except ValueError:
            continue
        values[match.group(1)] = values.get(match.group(1), 0.0) + number
    out = {}
    for key, name in COUNTERS.items():
        number = values.get(name, 0.0)
        if number < 0 or number != number:  # negative or NaN: not a counter
            raise ValueError(f"{name} is {number}")
        out[key] = int(number)
    return out


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _user(target: Target) -> str:
    if stalwart_api.generation(target.stalwart_version) == "jmap":
        return stalwart_api.jmap_user(target)
    return target.admin_user


async def probe(
    target: Target, port: int, ctx: ssl.SSLContext, conn: HttpsConnection | None = None
) -> CheckResult:
    """With `conn`, over the sweep's kept-alive connection (which sends credentials only when
    its certificate verified), else on a connection of its own."""

    def unknown(detail: str) -> CheckResult:
        return CheckResult(Check.DELIVERY, Status.UNKNOWN, detail)

    if not target.admin_password:
        return unknown("no admin credentials for the metrics endpoint")
    users = [_user(target)]
    if target.stalwart_version is None:  # REST admin first, then the v0.16 one
        users.append(stalwart_api.jmap_user(target))
    try:
        for user in users:
            authorization = _basic(user, target.admin_password)
            if conn is not None:
                response = await conn.request(PATH, authorization=authorization)
            else:
                response = await http_request(
                    target.address,
                    port,
                    PATH,
                    host=target.hostname,
                    ssl_context=ctx,
                    authorization=authorization,
                )
            if response.status != 401:
                break
    except ssl.SSLCertVerificationError as exc:
        return unknown(f"not sending credentials: {describe(exc)}")
    except (OSError, ValueError, ssl.SSLError) as exc:
        return unknown(f"metrics endpoint: {describe(exc)}")
    if response.status == 404:
        return unknown("Prometheus metrics are not enabled on the server")
    if response.status != 200:
        return unknown(f"{PATH} answered {response.status}")
    try:
        counts = parse(response.body.decode("utf-8", "replace"))
    except ValueError as exc:
        return unknown(f"unreadable metrics: {exc}")
    detail = (
        f"since start: {counts['delivered']} delivered, {counts['bounced']} bounced, "
        f"{counts['deferred']} deferred"
    )
    return CheckResult(Check.DELIVERY, Status.OK, detail, float(counts["bounced"]), dict(counts))
