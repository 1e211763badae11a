"""Requests checked (`api.checks`), then retried whole after a deadlock or serialization failure.

The request's transaction is its session dependency (api.deps.get_session), opened and committed
or rolled back inside the route handler; so the handler is the transaction boundary, and
running it again is retrying the transaction: dependencies are solved afresh (a new session),
and the body, which Starlette caches on the request, is parsed again. Postgres rolled the failed
transaction back, so nothing of the first attempt remains."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from api.checks import check_request
from api.finish import finishing
from database.sqlstate import sqlstate
from database.transactions import DEFAULT_ATTEMPTS, backoff, is_retryable

log = logging.getLogger(__name__)
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def retrying(handler: Handler, attempts: int = DEFAULT_ATTEMPTS) -> Handler:
    async def handle(request: Request) -> Response:
        for attempt in range(attempts):
            try:
                return await handler(request)
            except DBAPIError as exc:
                if not is_retryable(exc) or attempt == attempts - 1:
                    raise
                log.info(
                    "%s %s retried after SQLSTATE %s",
                    request.method,
                    request.url.path,
                    sqlstate(exc),
                )
                await asyncio.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    return handle


def _header_names(dependant: Dependant) -> tuple[str, ...]:
    """The headers a route and its dependencies declare (`Idempotency-Key`)."""
    names = [p.alias for p in dependant.header_params]
    for sub in dependant.dependencies:
        names += _header_names(sub)
    return tuple(dict.fromkeys(names))


def checked(handler: Handler, header_names: tuple[str, ...]) -> Handler:
    """`handler` behind `api.checks.check_request` (once, not once per retry)."""

    async def handle(request: Request) -> Response:
        await check_request(request, header_names)
        return await handler(request)

    return handle


class RetryingRoute(APIRoute):
    """The route class of every API router (`APIRouter(route_class=RetryingRoute)`): the
    request checks of `api.checks`, then the handler, retried whole after a deadlock or
    serialization failure; a sync endpoint finishes its request on its own thread
    (`api.finish`: response serialised and transaction committed there)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # The endpoint, its response and the request's commit on one thread (api.finish).
        super().__init__(path, finishing(self, endpoint), **kwargs)

    def get_route_handler(self) -> Handler:
        headers = _header_names(self.dependant)
        return checked(retrying(super().get_route_handler()), headers)
