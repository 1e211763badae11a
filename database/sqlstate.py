"""The SQLSTATE of a database error, wrapped by SQLAlchemy or raw from psycopg."""

from sqlalchemy.exc import DBAPIError


def sqlstate(exc: BaseException) -> str | None:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None
