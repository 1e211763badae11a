"""The API's engine checks each connection it checks out without a round trip
(database.session._closed_by_server): connections the server ended while they sat in the pool
are replaced before a request uses them."""

import time

from sqlalchemy import Engine, create_engine, pool, text

from database.session import session_scope


def _backend_pid() -> int:
    with session_scope() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_connections_ended_by_the_server_are_replaced_at_checkout(engine: Engine) -> None:
    before = {_backend_pid() for _ in range(3)}
    # Every idle connection to the test database (the pool's) ended by the server, as a restart
    # or an idle timeout would; from a connection of no pool.
    admin = create_engine(engine.url, poolclass=pool.NullPool)
    with admin.connect() as other:
        ended = other.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'idle'"
            )
        ).scalar_one()
        other.commit()
    admin.dispose()
    assert ended >= 1
    time.sleep(0.2)  # the backends' goodbyes reach the sockets
    # no error: each dead connection is noticed in the pool, not by a request's statement
    after = {_backend_pid() for _ in range(3)}
    assert not after & before
