"""Request dependencies. The session dependency is the transaction boundary: it commits when the
handler returns and rolls back when it raises; services never commit."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from database.models.tenants import ApiKey
from database.session import new_session
from database.transactions import Transaction, run_in_transaction
from domain.tenants import service as tenants
from kit.errors import Unauthorized
from settings import Settings, get_settings

log = logging.getLogger(__name__)


SettingsDep = Annotated[Settings, Depends(get_settings)]
"""The process's settings, for handlers to pass to the services (tests override the
dependency or the environment)."""


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


def get_transaction() -> Transaction:
    """Short transactions of their own, for work that must not share the request's: recording
    a key's use, or anything around a wait or a network call. Tests swap in savepoints."""
    return run_in_transaction


TransactionDep = Annotated[Transaction, Depends(get_transaction)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `penguinmails tenant create`.")


def current_key(
    transaction: TransactionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's key, read in a short transaction of its own (or from the process's key
    cache, for `api_key_cache_seconds`) and recorded as used in another that never waits:
    authentication holds no lock for the rest of the request, so a slow request cannot stall
    the others of the same key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    key = tenants.authenticate_cached(
        credentials.credentials, transaction, ttl=settings.api_key_cache_seconds
    )
    if not tenants.touch_due(key):
        return key
    try:
        transaction(lambda session: tenants.touch(session, key))
    except DBAPIError:  # bookkeeping only: never fail a request over it
        log.warning("could not record the use of API key %s", key.prefix)
    return key


CurrentKey = Annotated[ApiKey, Depends(current_key)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=500, description="Items per page.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit=limit or settings.default_page_size, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
