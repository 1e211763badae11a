"""The outbound queue through Stalwart's management API (probes/stalwart_api.py): v0.16+ JMAP
`x:QueuedMessage/query` + `/get` (`createdAt`), v0.12-v0.15 REST
`GET /api/queue/messages?values=1&limit=N` -> {"data": {"items": [...], "total": N}} (items in
queue-id order, which is creation order). Credentials go only over a connection whose certificate
verified."""

import ssl
from datetime import UTC, datetime
from typing import Any

from probes import stalwart_api
from probes.https import HttpsConnection
from probes.net import describe
from probes.types import Check, CheckResult, Status, Target, Thresholds


async def probe(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    page_size: int,
    t: Thresholds,
    now: datetime,
    conn: HttpsConnection | None = None,
) -> CheckResult:
    if not target.admin_password:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, "no admin credentials for the queue API")
    try:
        data = await stalwart_api.queue(target, port, ctx, page_size, conn)
    except ssl.SSLCertVerificationError as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"not sending credentials: {describe(exc)}")
    except stalwart_api.NotFoundError:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, "queue API not found")
    except stalwart_api.ApiError as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"queue API: {exc}")
    except (OSError, ValueError, ssl.SSLError) as exc:
        return CheckResult(Check.QUEUE, Status.UNKNOWN, f"queue API: {describe(exc)}")
    try:
        return evaluate(data, t, now)
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
