"""A workspace's warmup policy: a `warmup_policies` row, or the documented defaults.

Defaults, from ../shared/reference/sending.md ("Ramps, caps and pause rules in the market"):
- start 5 a day, +2 a day: Smartlead's example ramp (day 1 = 5, day 2 = 7, day 3 = 9;
  `daily_rampup` 2) and Instantly's slow ramp (+2 a day up to the limit);
- up to the inbox's `daily_send_limit` (the seed's default 50: Smartlead caps 40-50/day early);
- 150 a day per domain: SalesTarget's <=5 mailboxes per domain at 30/day each (150/day/domain);
  shared equally by the domain's inboxes;
- no per-server cap by default (set one to share a server's budget the same way);
- floor 5 a day while held (a listing, a critical server, a DNS regression): the low end of
  every re-ramp the reference quotes (Smartlead re-ramp days 1-7 5-10/day, DeepSyte 0-7 days
  5/day); PenguinMails' node rule "Spamhaus listing = immediate pause";
- the cap returns after the cause has been clear for a day (86,400 s): one clean day, the unit
  the ramp advances by.
An inbox may override start and increase (`warmup_start_daily`, `warmup_daily_increase`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.warmup import WarmupPolicy
from domain.warmup.ramp import Ramp

DEFAULT_DAILY_SEND_LIMIT = 50


@dataclass(frozen=True)
class Policy:
    start_daily: int = 5
    daily_increase: int = 2
    domain_daily_cap: int | None = 150
    server_daily_cap: int | None = None
    floor_daily: int = 5
    clear_seconds: int = 86400

    def ramp(self, inbox: Inbox) -> Ramp:
        return Ramp(
            start_daily=inbox.warmup_start_daily or self.start_daily,
            daily_increase=(
                self.daily_increase
                if inbox.warmup_daily_increase is None
                else inbox.warmup_daily_increase
            ),
            target=inbox.daily_send_limit or DEFAULT_DAILY_SEND_LIMIT,
        )


DEFAULTS = Policy()
FIELDS = (
    "start_daily",
    "daily_increase",
    "domain_daily_cap",
    "server_daily_cap",
    "floor_daily",
    "clear_seconds",
)


def of_row(row: WarmupPolicy | None) -> Policy:
    if row is None:
        return DEFAULTS
    return replace(DEFAULTS, **{f: getattr(row, f) for f in FIELDS})


def get(session: Session, workspace_id: uuid.UUID) -> Policy:
    return of_row(session.get(WarmupPolicy, workspace_id))


def put(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, values: dict[str, object]
) -> Policy:
    """Replace the workspace's policy (the caller holds the workspace lock)."""
    row = session.get(WarmupPolicy, workspace_id)
    if row is None:
        row = WarmupPolicy(workspace_id=workspace_id, tenant_id=tenant_id)
        session.add(row)
    for name in FIELDS:
        setattr(row, name, values[name])
    session.flush()
    return of_row(row)
