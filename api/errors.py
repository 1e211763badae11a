"""One JSON error shape for every error the API returns:

{"error": {"code": "...", "message": "...", "field": "name" | null, "details": [...]}}

A database that cannot be reached (stopped, restarting, refusing connections) is a 503
`database_unavailable` with `Retry-After`, logged once when the outage is first seen and once when
a connection succeeds again, never a traceback per request. A transaction Postgres rolled back
(SQLSTATE class 40: serialization failure, deadlock) is a 503 `transaction_conflict`, not logged.
"""

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from database.outage import classify, outage, reason
from kit.errors import (
    DatabaseUnavailable,
    PayloadTooLarge,
    PenguinMailsError,
    TransactionConflict,
)
from settings import get_settings

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None
    details: list[Any]


class ErrorBody(BaseModel):
    """The one shape of every error response."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad request"),
        (401, "Missing, invalid or revoked API key"),
        (404, "Not found (or another tenant's)"),
        (409, "Conflicts with the current state"),
        (413, "Request body larger than PENGUINMAILS_MAX_BODY_BYTES"),
        (422, "Invalid input; `field` names the field at fault"),
        (503, "Database unavailable or transaction conflict; retry after `Retry-After` seconds"),
    )
}


def error_body(
    code: str, message: str, field: str | None = None, details: list[Any] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field, "details": details or []}}


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        message = str(err.get("msg", "invalid"))
        field = _field_of(loc)
        if kind == "json_invalid":
            field, message = "body", "request body is not valid JSON"
        elif kind == "extra_forbidden":
            message = f"unknown field {field!r}"
        details.append(
            {
                "field": field,
                "location": str(loc[0]) if loc else "body",
                "message": message,
                "type": kind,
            }
        )
    first = details[0] if details else {"field": "body", "message": "invalid request"}
    return JSONResponse(
        status_code=422,
        content=error_body(
            "validation_error", f"{first['field']}: {first['message']}", first["field"], details
        ),
    )


def render(exc: PenguinMailsError) -> JSONResponse:
    """The response for a domain error; also used by ASGI middleware (`api.limits`)."""
    headers: dict[str, str] = {}
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, DatabaseUnavailable):
        outage.failed(reason(exc.__cause__) if exc.__cause__ is not None else exc.message)
        headers["Retry-After"] = str(get_settings().database_retry_after_seconds)
    elif isinstance(exc, TransactionConflict):
        headers["Retry-After"] = "1"
    elif exc.status_code >= 500:
        log.error("request failed: %s", exc.message)
    details = [exc.details] if exc.details else []
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(exc.code, exc.message, exc.field, details),
        headers=headers or None,
    )


def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PenguinMailsError)
    return render(exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at this path. The route that answers 405 names
    only its own methods, and `GET /x` and `POST /x` are two routes."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:  # Starlette's own body limit, should a route set one
        return render(PayloadTooLarge(str(exc.detail), field="body"))
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    headers = dict(getattr(exc, "headers", None) or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = allowed_methods(request) or [
            m.strip() for m in headers.get("Allow", "").split(",") if m.strip()
        ]
        headers["Allow"] = ", ".join(allowed)
        message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(codes.get(exc.status_code, "http_error"), message),
        headers=headers or None,
    )


def database_error(exc: BaseException) -> PenguinMailsError | None:
    """The domain error a driver error stands for, or None when it is not a retryable one."""
    kind = classify(exc)
    if kind == "outage":
        seconds = get_settings().database_retry_after_seconds
        error: PenguinMailsError = DatabaseUnavailable(
            f"the database is unavailable; retry in {seconds} seconds"
        )
    elif kind == "conflict":
        error = TransactionConflict(
            "the request conflicted with a concurrent one (serialization failure or deadlock); "
            "retry it"
        )
    else:
        return None
    error.__cause__ = exc
    return error


def _database(_: Request, exc: Exception) -> JSONResponse:
    error = database_error(exc)
    if error is None:
        raise exc  # not an outage: the catch-all below logs it with its traceback, as a 500
    return render(error)


def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(status_code=500, content=error_body("internal_error", "internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(PenguinMailsError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(psycopg.OperationalError, _database)
    app.add_exception_handler(Exception, _unhandled)
    outage.watch_pool()
