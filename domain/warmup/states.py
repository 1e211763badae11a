"""An inbox's warmup states (`inboxes.warmup_status`, the seed's column and default). Every write
goes through `WARMUP`.

    not_started -> in_progress   warmup enabled (PATCH /inboxes/{id} {"warmup_enabled": true})
    in_progress -> paused        a day that was not clean (DNS regression, listing, bounces)
    paused      -> in_progress   the reason cleared: the ramp resumes where it paused
    in_progress -> completed     the ramp reached the inbox's daily limit
    *           -> not_started   warmup disabled: the ramp starts again from day one if re-enabled
"""

from enum import StrEnum

from kit.states import Machine


class WarmupStatus(StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"


S = WarmupStatus
WARMUP = Machine(
    "inbox warmup",
    WarmupStatus,
    {
        S.NOT_STARTED: {S.IN_PROGRESS},
        S.IN_PROGRESS: {S.PAUSED, S.COMPLETED, S.NOT_STARTED},
        S.PAUSED: {S.IN_PROGRESS, S.NOT_STARTED},
        S.COMPLETED: {S.NOT_STARTED},
    },
    column="warmup_status",
)
