"""Is the database reachable? One place that tells an outage (refused, restarting, connection
lost) from a conflict (deadlock, serialization failure: retry the transaction) and from
everything else (a bug, a constraint: not retryable), and that logs an outage once when it is
first seen and once when it is over, whoever noticed: a request, a worker or a sweep."""

import logging
import select
import threading
from typing import Any, Literal

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool

from database.sqlstate import sqlstate

log = logging.getLogger(__name__)


class _Outage:
    """Whether the database is known to be down, so an outage is logged once, not per request.
    Failures come from the error handler; recovery from the pool (`checkout` succeeds only after
    the pre-ping or a fresh connect answered)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down = False

    def failed(self, reason: str) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
        log.error("database unavailable: %s", reason)

    def recovered(self) -> None:
        if not self.down:  # the hot path: one attribute read per checkout
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
        log.warning("database available again")

    def watch_pool(self) -> None:
        """Learn of recovery from the pool: a checkout succeeds only after the pre-ping or a
        fresh connect answered."""
        if not event.contains(Pool, "checkout", _checked_out):
            event.listen(Pool, "checkout", _checked_out)


outage = _Outage()

# Refused or ended by the server: admin/crash shutdown, "starting up"/"shutting down", too many
# connections; class 08 is "connection exception".
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def classify(exc: BaseException) -> Literal["outage", "conflict"] | None:
    """`outage` when the database cannot be reached, `conflict` when it rolled the transaction
    back (retryable), None for everything else (constraints, timeouts, bugs: a 500)."""
    state = sqlstate(exc)
    if state is not None and state.startswith("40"):
        return "conflict"
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "outage"
    if state is not None and (state.startswith("08") or state in _OUTAGE_SQLSTATES):
        return "outage"
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    # psycopg reports every failure to connect (refused, timeout, "the database system is
    # starting up", unknown database) as a bare OperationalError without a SQLSTATE.
    if isinstance(orig, psycopg.OperationalError) and state is None:
        return "outage"
    return None


def reason(exc: BaseException) -> str:
    """The driver's first line, e.g. 'connection failed: connection to server at "db", port 5432
    failed: Connection refused' (psycopg's second line only suggests causes)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = " ".join(lines[0].split()) if lines else type(orig).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def ended_by_server(dbapi_connection: Any) -> bool:
    """Whether a connection idle in the pool was closed or ended by the server (a restart, a
    terminated backend: its FATAL message or the end of the stream is waiting to be read),
    found without a round trip."""
    if dbapi_connection.closed:
        return True
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    return bool(readable)


def _checked_out(dbapi_connection: Any, *_: Any) -> None:
    # Pool-class listeners run before an engine's own (database.session's check that raises
    # for such a connection): a dead pooled connection checked out during an outage is not a
    # recovery. Fresh connections and pre-pinged ones pass.
    if outage.down and ended_by_server(dbapi_connection):
        return
    outage.recovered()
