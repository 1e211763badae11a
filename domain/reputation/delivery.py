"""Each server's own bounce and deferral rates, from the `delivery` health check's samples
(probes/delivery.py: Stalwart's `delivery.delivered`, `delivery.dsn-perm-fail` and
`delivery.dsn-temp-fail` counters since the process started, stored with every sweep in
`health_check_results.data`).

Over the last `WINDOW` the counts are the sum of the increases between consecutive samples; a
sample lower than the one before (Stalwart restarted: its counters start again at zero) counts
from zero. One query for all the servers asked about (a window function over the
`(vps_id, checked_at)` index).

    bounce_rate   = bounced / (delivered + bounced)
    deferral_rate = deferred / (delivered + bounced + deferred)

A rate needs `MIN_RECIPIENTS` recipients in the window (below it one bounce is several percent);
fewer is "too few to rate" (unknown, never clean). Thresholds from ../shared/reference/
sending.md "Health rules in anchors" and "Per-inbox daily limits": bounces over 3% pause
(Smartlead: >3-5% risks disconnection), over 2% already cost score (PenguinMails: hard bounces
>2% are penalised); deferrals over 10% cost score (a Maildoso rule: >10% SMTP errors lowers the
cap), never pause by themselves."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

WINDOW = timedelta(hours=24)
MIN_RECIPIENTS = 20
BOUNCE_PAUSE = 0.03
BOUNCE_WARN = 0.02
DEFERRAL_WARN = 0.10
BOUNCES = "bounces"  # the hold cause (domain/warmup/service.py)


@dataclass(frozen=True)
class Rates:
    delivered: int
    bounced: int
    deferred: int
    samples: int

    @property
    def recipients(self) -> int:
        return self.delivered + self.bounced

    @property
    def bounce_rate(self) -> float | None:
        if self.recipients < MIN_RECIPIENTS:
            return None
        return self.bounced / self.recipients

    @property
    def deferral_rate(self) -> float | None:
        if self.recipients < MIN_RECIPIENTS:
            return None
        return self.deferred / (self.recipients + self.deferred)


_RATES = text(
    """
    WITH s AS (
        SELECT vps_id,
               (data->>'delivered')::bigint AS d,
               (data->>'bounced')::bigint AS b,
               (data->>'deferred')::bigint AS f,
               lag((data->>'delivered')::bigint) OVER w AS pd,
               lag((data->>'bounced')::bigint) OVER w AS pb,
               lag((data->>'deferred')::bigint) OVER w AS pf
        FROM health_check_results
        WHERE vps_id = ANY(:ids) AND "check" = 'delivery' AND status = 'ok'
          AND checked_at > :since AND checked_at <= :now
          AND jsonb_typeof(data->'delivered') = 'number'
          AND jsonb_typeof(data->'bounced') = 'number'
          AND jsonb_typeof(data->'deferred') = 'number'
        WINDOW w AS (PARTITION BY vps_id ORDER BY checked_at)
    )
    SELECT vps_id,
           coalesce(sum(CASE WHEN d >= pd AND b >= pb AND f >= pf THEN d - pd ELSE d END), 0),
           coalesce(sum(CASE WHEN d >= pd AND b >= pb AND f >= pf THEN b - pb ELSE b END), 0),
           coalesce(sum(CASE WHEN d >= pd AND b >= pb AND f >= pf THEN f - pf ELSE f END), 0),
           count(*)
    FROM s WHERE pd IS NOT NULL
    GROUP BY vps_id
    """
)


def rates(session: Session, vps_ids: Iterable[uuid.UUID], now: datetime) -> dict[uuid.UUID, Rates]:
    """Servers with at least two samples in the window -> their counts over it."""
    ids = sorted(set(vps_ids))
    if not ids:
        return {}
    rows = session.execute(_RATES, {"ids": ids, "since": now - WINDOW, "now": now})
    return {vps_id: Rates(int(d), int(b), int(f), int(n) + 1) for vps_id, d, b, f, n in rows.all()}


def trouble(rates_by_server: dict[uuid.UUID, Rates]) -> dict[uuid.UUID, str]:
    """Servers whose bounce rate is over the pause threshold."""
    return {
        vps_id: BOUNCES
        for vps_id, r in rates_by_server.items()
        if r.bounce_rate is not None and r.bounce_rate > BOUNCE_PAUSE
    }


def bounce_value(rate: float) -> float:
    return 0.0 if rate > BOUNCE_PAUSE else 0.5 if rate > BOUNCE_WARN else 1.0


def deferral_value(rate: float) -> float:
    return 0.5 if rate > DEFERRAL_WARN else 1.0
