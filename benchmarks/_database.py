"""A throwaway database for a benchmark run: created on the server named by
`PENGUINMAILS_BENCH_DATABASE_URL` (default: the local Postgres on 127.0.0.1:5432), migrated,
and dropped afterwards. Sets the environment so child processes use it too."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database() -> Iterator[str]:
    server = make_url(os.environ.get("PENGUINMAILS_BENCH_DATABASE_URL", DEFAULT_SERVER))
    name = f"pmbench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    os.environ["PENGUINMAILS_DATABASE_URL"] = url
    os.environ.setdefault("PENGUINMAILS_SECRET_KEY", "benchmark-secret-key-0123456789")
    from database import migrate
    from database.session import reset_engines
    from settings import reset_settings

    reset_settings()
    reset_engines()
    migrate.upgrade(url)
    try:
        yield url
    finally:
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
