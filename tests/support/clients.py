"""TestClients whose requests share a test's session (a savepoint per request), for the API
alone (`client`) and for the served application with the console (`console`)."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

T = TypeVar("T")


@contextmanager
def client_for(app: FastAPI, session: Session) -> Iterator[TestClient]:
    from api.deps import get_session, get_transaction

    def _session() -> Iterator[Session]:
        # A savepoint per request: a failed request undoes only its own writes, as in production.
        nested = session.begin_nested()
        try:
            yield session
            nested.commit()
        except BaseException:
            nested.rollback()
            raise

    def _in_savepoint(fn: Callable[[Session], T]) -> T:
        nested = session.begin_nested()
        try:
            result = fn(session)
            nested.commit()
            return result
        except BaseException:
            nested.rollback()
            raise

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_transaction] = lambda: _in_savepoint
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
