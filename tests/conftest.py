"""Test database: a fresh Postgres database per test run, migrated by Alembic.

The server is `PENGUINMAILS_TEST_DATABASE_URL` when set (CI points it at the machine's Postgres),
else an embedded Postgres in `.penguinmails-test/`, so the suite runs on a machine with no server.
Each test runs inside a transaction that is rolled back (`session`, `client`); tests that need
real commits (other processes, threads) use `committed` and the tables are emptied afterwards."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tests.support.clients import client_for
from tests.support.environment import TEST_SECRET_KEY
from tests.support.fixtures import (  # noqa: F401 - shared by every folder
    embedded_dir,
    override_settings,  # the one way to change settings
)

ROOT = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    from api.app import create_app

    with client_for(create_app(), session) as c:
        yield c


@pytest.fixture
def console(session: Session) -> Iterator[TestClient]:
    """The served application (the API with the console) on the test's session."""
    from cli.web import create_app

    with client_for(create_app(), session) as c:
        yield c
