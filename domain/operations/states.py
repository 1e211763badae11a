"""An operation's states. Every write of `operations.status` goes through `OPERATION`.

queued  -> running     a worker claims it (one running per stack: a unique index)
queued  -> cancelled   POST /operations/{id}/cancel
running -> succeeded   the run's results recorded
running -> failed      a permanent failure, or out of attempts
running -> queued      a transient failure (with backoff), or its worker's lease lapsed
running -> superseded  its worker's lease lapsed and it folded into the queued `up`
"""

from enum import StrEnum

from kit.states import Machine


class OperationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"


S = OperationStatus
OPERATION = Machine(
    "operation",
    OperationStatus,
    {
        S.QUEUED: {S.RUNNING, S.CANCELLED},
        S.RUNNING: {S.SUCCEEDED, S.FAILED, S.QUEUED, S.SUPERSEDED},
    },
)
FINISHED = (S.SUCCEEDED, S.FAILED, S.CANCELLED, S.SUPERSEDED)
