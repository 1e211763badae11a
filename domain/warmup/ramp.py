"""The ramp as a pure function of dates (no counters a sweep could skip or repeat).

A ramp day is 24 hours of *active* warmup: time since `started_at` minus the time spent paused.
A pause discards the ramp day it interrupted (that day was not clean): `paused_at` is set to the
start of that day, so after the resume the same day is run again from its beginning, and the
next step comes only after a whole clean day. Sweeps that run late, twice, or after a restart
compute the same day from the same dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Ramp:
    start_daily: int
    daily_increase: int
    target: int  # the inbox's daily_send_limit: the ramp completes when it reaches it

    def step(self, day: int) -> int:
        """The daily limit on ramp day `day` (1-based)."""
        return min(self.target, self.start_daily + max(day - 1, 0) * self.daily_increase)

    def completes_on(self) -> int:
        """The first day whose step is the target."""
        if self.start_daily >= self.target or self.daily_increase <= 0:
            return 1 if self.start_daily >= self.target else 0
        return 1 + -(-(self.target - self.start_daily) // self.daily_increase)


def active(started_at: datetime, paused_seconds: int, at: datetime) -> timedelta:
    return at - started_at - timedelta(seconds=paused_seconds)


def day(
    started_at: datetime, paused_seconds: int, paused_at: datetime | None, now: datetime
) -> int:
    """The ramp day at `now` (while paused, the day the pause froze)."""
    elapsed = active(started_at, paused_seconds, paused_at or now)
    return max(1, elapsed // DAY + 1)


def pause_point(started_at: datetime, paused_seconds: int, now: datetime) -> datetime:
    """Where a pause at `now` begins: the start of the current ramp day."""
    elapsed = active(started_at, paused_seconds, now)
    if elapsed <= timedelta(0):
        return now
    return now - (elapsed % DAY)


def resumed_paused_seconds(paused_seconds: int, paused_at: datetime, now: datetime) -> int:
    return paused_seconds + int((now - paused_at).total_seconds())


def next_step_at(started_at: datetime, paused_seconds: int, current_day: int) -> datetime:
    """When ramp day `current_day + 1` begins, if no pause comes first."""
    return started_at + timedelta(seconds=paused_seconds) + current_day * DAY
