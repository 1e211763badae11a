"""Request dependencies. The session dependency is the transaction boundary: it commits when the
handler returns and rolls back when it raises; services never commit."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from database.session import new_session
from domain.tenants import service as tenants
from domain.tenants.model import ApiKey
from kit.errors import Unauthorized
from settings import get_settings


def get_session() -> Iterator[Session]:
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="An API key from `penguinmails tenant create`.")


def current_key(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    return tenants.authenticate(session, credentials.credentials)


CurrentKey = Annotated[ApiKey, Depends(current_key)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int | None, Query(ge=1, le=500, description="Items per page.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit=limit or get_settings().default_page_size, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
