"""Test database: a fresh Postgres database per test run, migrated by Alembic.

The server is `PENGUINMAILS_TEST_DATABASE_URL` when set (CI points it at the machine's Postgres),
else an embedded Postgres in `.penguinmails-test/`, so the suite runs on a machine with no server.
Each test runs inside a transaction that is rolled back (`session`, `client`); tests that need
real commits (other processes, threads) use `committed` and the tables are emptied afterwards."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from fastapi import FastAPI

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET_KEY = "test-secret-key-not-for-production"


def _server_url() -> str:
    url = os.environ.get("PENGUINMAILS_TEST_DATABASE_URL")
    if url:
        return url
    from database.embedded import embedded_url

    return embedded_url(ROOT / ".penguinmails-test")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = make_url(_server_url())
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    name = f"pmtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)

    os.environ["PENGUINMAILS_DATABASE_URL"] = url
    os.environ["PENGUINMAILS_SECRET_KEY"] = TEST_SECRET_KEY
    os.environ["PENGUINMAILS_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    from database import migrate
    from database.session import reset_engines
    from settings import reset_settings

    reset_settings()
    reset_engines()
    migrate.upgrade(url)
    yield url
    reset_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from database.session import get_engine

    yield get_engine()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits become savepoints inside one transaction rolled back at the end."""
    connection = engine.connect()
    outer = connection.begin()
    db = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield db
    finally:
        db.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    """For tests whose work must really commit (other threads or processes read it)."""
    yield engine
    from database.base import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@contextmanager
def client_for(app: "FastAPI", session: Session) -> Iterator[TestClient]:
    """A TestClient on `app` whose requests share the test's session."""
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


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    from api.app import create_app

    with client_for(create_app(), session) as c:
        yield c


@pytest.fixture
def console(session: Session) -> Iterator[TestClient]:
    """The served application (API and console) on the test's session."""
    from cli.web import create_app

    with client_for(create_app(), session) as c:
        yield c
