"""Liveness and readiness. `/healthz` never touches the database (a database outage must not get
the process restarted); `/readyz` is 503 `database_unavailable` while the database is down."""

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep
from api.errors import ERROR_RESPONSES
from api.retry import RetryingRoute
from kit.errors import DatabaseUnavailable

router = APIRouter(route_class=RetryingRoute, tags=["health"])


@router.get("/healthz", summary="The process is up (does not use the database)")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers", responses={503: ERROR_RESPONSES[503]})
def readyz(session: SessionDep) -> dict[str, str]:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        # Logged once per outage by api.errors, with the driver's reason.
        raise DatabaseUnavailable("the database is unavailable") from exc
    return {"status": "ready", "database": "ok"}
