from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from kit.errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers")
def readyz(session: SessionDep) -> dict[str, str]:
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("database unreachable") from exc
    return {"status": "ready", "database": "ok"}
