"""One JSON error shape for every error the API returns:

{"error": {"code": "...", "message": "...", "field": "name" | null, "details": [...]}}
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.errors import PenguinMailsError

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
        (422, "Invalid input; `field` names the field at fault"),
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


def _domain(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PenguinMailsError)
    if exc.status_code >= 500:
        log.error("request failed: %s", exc.message)
    details = [exc.details] if exc.details else []
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(exc.code, exc.message, exc.field, details),
        headers={"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None,
    )


def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
        headers=getattr(exc, "headers", None),
    )


def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(status_code=500, content=error_body("internal_error", "internal error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(PenguinMailsError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unhandled)
