"""Requests retried whole after a deadlock or serialization failure.

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
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

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


class RetryingRoute(APIRoute):
    """The route class of every API router (`APIRouter(route_class=RetryingRoute)`)."""

    def get_route_handler(self) -> Handler:
        return retrying(super().get_route_handler())
