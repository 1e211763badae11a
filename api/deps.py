"""Request dependencies. The session dependency is the transaction boundary: it commits when the
handler returns and rolls back when it raises; services never commit.

The dependencies are `async def` where they do no I/O on the common path, and hand what blocks to
the thread pool themselves: FastAPI runs each sync dependency on a thread of its own, a thread
switch per dependency per request (issue 16's profile)."""

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.finish import close_request, open_request
from database.models.tenants import ApiKey
from database.session import new_session
from database.transactions import Transaction, run_in_transaction
from domain.tenants import service as tenants
from kit.errors import Unauthorized
from settings import Settings, get_settings

log = logging.getLogger(__name__)


async def settings_dependency() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(settings_dependency)]
"""The process's settings, for handlers to pass to the services (tests override the
dependency or the environment)."""


async def get_session() -> AsyncIterator[Session]:
    """A session (making one does no I/O: it connects at its first statement, on the handler's
    thread). A sync endpoint commits or rolls it back on its own thread before handing the
    thread back (`api.finish`); otherwise it is committed or rolled back on a thread of the
    pool here."""
    session = new_session()
    holder = open_request(session)
    try:
        yield session
        if not holder.finished:
            await run_in_threadpool(session.commit)
    except BaseException:
        if not holder.finished:
            await run_in_threadpool(session.rollback)
        raise
    finally:
        close_request()
        session.close()  # after the commit or rollback: returns the connection, no I/O


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_transaction() -> Transaction:
    """Short transactions of their own, for work that must not share the request's: recording
    a key's use, or anything around a wait or a network call. Tests swap in savepoints."""
    return run_in_transaction


TransactionDep = Annotated[Transaction, Depends(get_transaction)]

_bearer = HTTPBearer(auto_error=False, description="An API key from `penguinmails tenant create`.")


async def current_key(
    transaction: TransactionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's key, read in a short transaction of its own (or from the process's key
    cache, for `api_key_cache_seconds`) and recorded as used in another that never waits:
    authentication holds no lock for the rest of the request, so a slow request cannot stall
    the others of the same key. A cached key that needs no touch costs no thread."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send 'Authorization: Bearer <api key>'")
    ttl = settings.api_key_cache_seconds
    key = tenants.cached_key(credentials.credentials, ttl=ttl)
    if key is None:
        key = await run_in_threadpool(
            tenants.authenticate_cached, credentials.credentials, transaction, ttl=ttl
        )
    if not tenants.touch_due(key):
        return key
    await run_in_threadpool(_touch, transaction, key)
    return key


def _touch(transaction: Transaction, key: ApiKey) -> None:
    try:
        transaction(lambda session: tenants.touch(session, key))
    except DBAPIError:  # bookkeeping only: never fail a request over it
        log.warning("could not record the use of API key %s", key.prefix)


CurrentKey = Annotated[ApiKey, Depends(current_key)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, le=500, description="Items per page.")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit=limit or settings.default_page_size, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
