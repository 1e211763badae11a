"""A sync route's whole request on one worker thread: the endpoint, its response validated and
serialised, and the request's transaction committed (or rolled back), in that order, before the
thread is handed back.

FastAPI alone takes three trips to the thread pool for a sync endpoint with a response model and
a session dependency: the endpoint, the response's validation, and the dependency's commit. Each
is a thread switch and a wait for a free thread, and between the endpoint and the commit the
request holds a pooled connection while it waits for a thread: with every thread busy waiting
for a connection, and every connection held by a request waiting for a thread, the API stalled
until the pool's timeout (the API benchmark's 30 s requests). Here the connection is back in the
pool before the thread is.

`RetryingRoute` wraps every sync endpoint with `finishing(route, endpoint)`; `api.deps.get_session`
puts the request's session where the wrapper finds it (`open_request`). A session dependency
overridden by a test (a savepoint) is not registered, and its own teardown ends it as before.
The commit now runs inside `RetryingRoute`'s retry loop, so a serialization failure at commit is
retried with the rest of the request."""

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from sqlalchemy.orm import Session
from starlette.responses import Response

if TYPE_CHECKING:
    from fastapi.routing import APIRoute


class RequestSession:
    """The request's session, and whether the endpoint's thread ended its transaction."""

    __slots__ = ("finished", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.finished = False


_current: ContextVar[RequestSession | None] = ContextVar(
    "penguinmails_request_session", default=None
)


def open_request(session: Session) -> RequestSession:
    """Register `session` as the request's (called by the session dependency, on the request's
    task: the endpoint's thread runs in a copy of its context and sees the same holder)."""
    holder = RequestSession(session)
    _current.set(holder)
    return holder


def close_request() -> None:
    _current.set(None)


def _body_allowed(status: int) -> bool:
    return not (status < 200 or status in {204, 205, 304})


def _response(route: "APIRoute", result: Any) -> Response:
    """What FastAPI's request handler makes of a non-Response result (fastapi.routing
    .get_request_handler), done here so that it runs on the endpoint's thread."""
    if isinstance(result, Response):
        return result
    status = route.status_code or 200
    field = route.response_field
    declared: Any = route.response_class
    default_class = isinstance(declared, DefaultPlaceholder)
    response_class: Any = declared.value if default_class else declared
    if field is None:
        response: Response = response_class(jsonable_encoder(result), status_code=status)
    else:
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=result)
        options: dict[str, Any] = {
            "include": route.response_model_include,
            "exclude": route.response_model_exclude,
            "by_alias": route.response_model_by_alias,
            "exclude_unset": route.response_model_exclude_unset,
            "exclude_defaults": route.response_model_exclude_defaults,
            "exclude_none": route.response_model_exclude_none,
        }
        if default_class:
            response = Response(
                content=field.serialize_json(value, **options),
                media_type="application/json",
                status_code=status,
            )
        else:
            response = response_class(field.serialize(value, **options), status_code=status)
    if not _body_allowed(response.status_code):
        response.body = b""
    return response


def finishing(route: "APIRoute", endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` (sync) returning its finished Response: serialised, and the request's
    session committed, on the calling thread. Endpoints that are coroutines or generators are
    returned as they are."""
    endpoint = unfinished(endpoint)
    if (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint

    @functools.wraps(endpoint)
    def finished(*args: Any, **kwargs: Any) -> Response:
        holder = _current.get()
        try:
            response = _response(route, endpoint(*args, **kwargs))
            if holder is not None:
                holder.finished = True
                holder.session.commit()
        except BaseException:
            if holder is not None:
                holder.finished = True
                holder.session.rollback()
            raise
        return response

    finished.__unfinished__ = endpoint  # type: ignore[attr-defined]
    return finished


def unfinished(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint `finishing` wrapped (a route copied into another keeps one wrapper)."""
    return getattr(endpoint, "__unfinished__", endpoint)
