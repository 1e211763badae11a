"""The outbound queue through Stalwart's v0.15 management API:
`GET /api/queue/messages?values=1&limit=N` -> {"data": {"items": [...], "total": N}}. Items come
in queue-id order, which is creation order, so the page's oldest `created` is the queue's oldest.
Credentials go only over a connection whose certificate verified; v0.16 removed `/api` (JMAP
`x:QueuedMessage/query` instead), which this probe reports as unknown."""

import base64
import json
import ssl
from datetime import UTC, datetime
from typing import Any

from probes.net import describe, http_get
from probes.types import Check, CheckResult, Status, Target, Thresholds


async def probe(
    target: Target, port: int, ctx: ssl.SSLContext, page_size: int, t: Thresholds, now: datetime
) -> CheckResult:
    if not target.admin_password:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, "no admin credentials for the queue API")
    token = base64.b64encode(f"{target.admin_user}:{target.admin_password}".encode()).decode()
    try:
        response = await http_get(
            target.address,
            port,
            f"/api/queue/messages?values=1&limit={int(page_size)}",
            host=target.hostname,
            ssl_context=ctx,
            authorization=f"Basic {token}",
        )
    except ssl.SSLCertVerificationError as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"not sending credentials: {describe(exc)}")
    except (OSError, ValueError, ssl.SSLError) as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"queue API: {describe(exc)}")
    if response.status == 404:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, "queue API not found (Stalwart v0.16+?)")
    if response.status != 200:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"queue API answered {response.status}")
    try:
        body = json.loads(response.body)
        if "error" in body:
            return CheckResult(Check.QUEUE, Status.UNKNOWN, f"queue API error: {body['error']}")
        return evaluate(body["data"], t, now)
    except (ValueError, KeyError, TypeError) as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"unreadable queue answer: {exc}")


def evaluate(data: dict[str, Any], t: Thresholds, now: datetime) -> CheckResult:
    total = int(data["total"])
    created = [
        datetime.fromisoformat(item["created"].replace("Z", "+00:00")).astimezone(UTC)
        for item in data.get("items", [])
        if isinstance(item, dict) and item.get("created")
    ]
    oldest = max(0.0, (now - min(created)).total_seconds()) if created else 0.0
    if total >= t.queue_critical_size or oldest >= t.queue_critical_age_seconds:
        status = Status.CRITICAL
    elif total >= t.queue_warning_size or oldest >= t.queue_warning_age_seconds:
        status = Status.WARNING
    else:
        status = Status.OK
    detail = f"{total} queued" + (f", oldest {oldest / 60:.0f} min" if created else "")
    return CheckResult(
        Check.QUEUE, status, detail, float(total), {"size": total, "oldest_age_seconds": oldest}
    )
