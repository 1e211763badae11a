"""One error hierarchy for the whole service.

    PenguinMailsError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── ValidationFailed (422)   - carries the field at fault
    └── Unavailable (503)

Every subclass carries its HTTP status and a stable `code`; `api.errors` turns any of them into
the one JSON error shape, so the domain layer never imports FastAPI.
"""

from typing import Any


class PenguinMailsError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details


class BadRequest(PenguinMailsError):
    status_code = 400
    code = "bad_request"


class Unauthorized(PenguinMailsError):
    status_code = 401
    code = "unauthorized"


class NotFound(PenguinMailsError):
    status_code = 404
    code = "not_found"


class Conflict(PenguinMailsError):
    status_code = 409
    code = "conflict"


class ValidationFailed(PenguinMailsError):
    status_code = 422
    code = "validation_error"


class Unavailable(PenguinMailsError):
    status_code = 503
    code = "unavailable"


class ConfigurationError(PenguinMailsError):
    """Settings that cannot work (raised at start-up, before anything is served)."""

    code = "configuration_error"
