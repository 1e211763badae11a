"""Engines and sessions. Services receive a Session and never commit; the boundary (a request
dependency, a job wrapper, a CLI command) owns the transaction through `session_scope`."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from database.embedded import embedded_url
from settings import Settings, get_settings

_lock = threading.Lock()
_makers: dict[str, sessionmaker[Session]] = {}


def database_url(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return embedded_url(settings.data_dir)


def _maker() -> sessionmaker[Session]:
    url = database_url()
    with _lock:
        if url not in _makers:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)
            _makers[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return _makers[url]


def get_engine() -> Engine:
    engine = _maker().kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def reset_engines() -> None:
    """Dispose every pool (tests switch databases; forked processes must not share sockets)."""
    with _lock:
        for maker in _makers.values():
            maker.kw["bind"].dispose()
        _makers.clear()


def new_session() -> Session:
    return _maker()()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
