"""Transactions that survive the two failures Postgres asks the client to retry: a deadlock
(SQLSTATE 40P01) and a serialization failure (40001). Both roll the whole transaction back, so
the only safe retry is of the whole transaction, at its boundary: `run_in_transaction` for jobs
and workers, `api.retry` for requests.

The lock order (CONTRIBUTING.md "Lock order") makes deadlocks rare; this makes the rare one
invisible instead of a 500 or an operation stuck `running`."""

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.outage import classify
from database.session import session_scope
from database.sqlstate import sqlstate

log = logging.getLogger(__name__)
T = TypeVar("T")


class Transaction(Protocol):
    """Runs `fn(session)` in a committed transaction: `run_in_transaction`, or a test's own."""

    def __call__(self, fn: Callable[[Session], T], /) -> T: ...


DEFAULT_ATTEMPTS = 4


def is_retryable(exc: BaseException) -> bool:
    return classify(exc) == "conflict"


def is_disconnect(exc: BaseException) -> bool:
    """The connection was lost or could not be made (a restart, an outage): worth retrying
    once the pool has reconnected."""
    return classify(exc) == "outage"


def backoff(attempt: int) -> float:
    """Jittered, so two transactions that deadlocked do not collide again in step."""
    base: float = min(0.02 * 2**attempt, 0.5)
    return base * (0.5 + random.random())  # noqa: S311


def run_in_transaction(
    fn: Callable[[Session], T], *, attempts: int = DEFAULT_ATTEMPTS, pre_ping: bool = True
) -> T:
    """`fn(session)` in one transaction, committed; the whole transaction again (with a fresh
    session) after a deadlock or serialization failure, at most `attempts` times. `fn` must not
    have effects outside the database that a retry would repeat."""
    for attempt in range(attempts):
        try:
            with session_scope(pre_ping=pre_ping) as session:
                return fn(session)
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts - 1:
                raise
            log.info("transaction retried after SQLSTATE %s", sqlstate(exc))
            time.sleep(backoff(attempt))
    raise AssertionError("unreachable")
