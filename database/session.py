"""Engines and sessions. Services receive a Session and never commit; the boundary (a request
dependency, a job wrapper, a CLI command) owns the transaction through `session_scope`."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from database.embedded import embedded_url
from database.outage import ended_by_server
from settings import Settings, get_settings

_lock = threading.Lock()
_makers: dict[tuple[str, bool], sessionmaker[Session]] = {}
# Beyond the pool: sessions of threads that are not the API's (the scheduler's, in `serve`).
POOL_OVERFLOW = 10


def database_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_url(settings.data_dir)


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The API's check of each connection it checks out, without a round trip: a connection
    idle in the pool has nothing to read unless the server ended it (a restart, a terminated
    backend, an idle timeout: its FATAL message or the end of the stream). The pool then
    connects again, and the request never sees it. Replaces `pool_pre_ping`, a `SELECT 1` per
    transaction (issue 16)."""
    if ended_by_server(dbapi_connection):
        raise DisconnectionError("the server ended the connection while it was in the pool")


def _maker(pre_ping: bool = True) -> sessionmaker[Session]:
    """One engine per database and kind: the API's checks each connection it checks out (a
    request then never fails on a connection the database closed: `_closed_by_server`); the
    workers' does not (`pre_ping=False`: a claim, load or finish on a dead connection fails as
    a disconnect, the pool is invalidated, and the worker's loop or finish retries). The pool
    holds a connection per API thread (`api_threads`)."""
    settings = get_settings()
    url = database_url(settings)
    with _lock:
        if (url, pre_ping) not in _makers:
            engine = create_engine(
                url,
                pool_size=settings.api_threads,
                max_overflow=POOL_OVERFLOW,
            )
            if pre_ping:
                event.listen(engine, "checkout", _closed_by_server)
            _makers[(url, pre_ping)] = sessionmaker(bind=engine, expire_on_commit=False)
        return _makers[(url, pre_ping)]


def get_engine(*, pre_ping: bool = True) -> Engine:
    """The engine of `_maker(pre_ping)`: `pre_ping=False` is the workers' (a single statement
    in autocommit needs no Session)."""
    engine = _maker(pre_ping).kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def reset_engines() -> None:
    """Dispose every pool (tests switch databases; forked processes must not share sockets)."""
    with _lock:
        for maker in _makers.values():
            maker.kw["bind"].dispose()
        _makers.clear()


def new_session(*, pre_ping: bool = True) -> Session:
    return _maker(pre_ping)()


@contextmanager
def session_scope(*, pre_ping: bool = True) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error. `pre_ping=False`:
    the workers' engine (`_maker`)."""
    session = new_session(pre_ping=pre_ping)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
