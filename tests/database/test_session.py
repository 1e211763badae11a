"""The API's engine checks each connection it checks out without a round trip
(database.session._closed_by_server): a connection the server ended while it sat in the pool
is replaced before the request uses it, and a live one is reused as it is."""

from sqlalchemy import Engine, create_engine, pool, text

from database.session import session_scope


def _backend_pid() -> int:
    with session_scope() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_ended_by_the_server_is_replaced_at_checkout(engine: Engine) -> None:
    first = _backend_pid()
    admin = create_engine(engine.url, poolclass=pool.NullPool)  # a connection of no pool
    with admin.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        other.commit()
    admin.dispose()
    # no error: the terminated connection is noticed in the pool, not by a statement
    second = _backend_pid()
    assert second != first
    assert _backend_pid() == second  # a live connection is reused
