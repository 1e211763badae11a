"""One error hierarchy for the whole service.

    PenguinMailsError (500)
    ├── BadRequest (400)
    ├── Unauthorized (401)
    ├── Forbidden (403)          - a console form without its CSRF token
    ├── NotFound (404)
    ├── Conflict (409)
    ├── PayloadTooLarge (413)
    ├── ValidationFailed (422)   - carries the field at fault
    └── Unavailable (503)
        ├── DatabaseUnavailable  - the database cannot be reached; retry (Retry-After)
        └── TransactionConflict  - serialization failure or deadlock; retry (Retry-After)

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


class Forbidden(PenguinMailsError):
    status_code = 403
    code = "forbidden"


class NotFound(PenguinMailsError):
    status_code = 404
    code = "not_found"


class Conflict(PenguinMailsError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(PenguinMailsError):
    status_code = 413
    code = "payload_too_large"


class ValidationFailed(PenguinMailsError):
    status_code = 422
    code = "validation_error"


class Unavailable(PenguinMailsError):
    status_code = 503
    code = "unavailable"


class DatabaseUnavailable(Unavailable):
    """Postgres is down, restarting or refusing connections. Raise it `from` the driver's error:
    `api.errors` logs the cause once per outage, not once per request."""

    code = "database_unavailable"


class TransactionConflict(Unavailable):
    """Postgres rolled the transaction back (SQLSTATE class 40: serialization failure,
    deadlock); the same request may succeed when repeated."""

    code = "transaction_conflict"


class ConfigurationError(PenguinMailsError):
    """Settings that cannot work (raised at start-up, before anything is served)."""

    code = "configuration_error"
