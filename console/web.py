"""What every console page shares: the templates, the route class (the API's request checks
and retries, then errors rendered as pages with a strict Content-Security-Policy), the signed-in
key, the CSRF-checked form."""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from api.deps import SettingsDep, TransactionDep
from api.errors import database_error
from api.retry import Handler, RetryingRoute
from console import session as cookies
from database.models.tenants import ApiKey
from domain.tenants import service as tenants
from domain.validation import control_character_problem, unicode_address
from kit.errors import NotFound, PenguinMailsError, Unauthorized, ValidationFailed
from settings import Settings

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 0:
        return "in " + _span(-seconds)
    return _span(seconds) + " ago"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["ago"] = _ago
templates.filters["when"] = _when
templates.filters["address"] = unicode_address


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    csrf: str | None = None,
) -> HTMLResponse:
    state = request.state
    page = templates.get_template(name).render(
        request=request,
        csrf=csrf if csrf is not None else getattr(state, "csrf", ""),
        signed_in=getattr(state, "signed_in", False),
        refresh_ms=int(getattr(state, "refresh_seconds", 2.0) * 1000),
        **(context or {}),
    )
    return HTMLResponse(page, status_code=status_code)


def _error_page(request: Request, exc: PenguinMailsError) -> Response:
    if isinstance(exc, Unauthorized) and request.method == "GET":
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/console/sign-in?next={target}", status_code=303)
    return render(
        request,
        "error.html",
        {
            "error": exc,
            "title": {404: "Not found", 403: "Refused", 422: "Refused"}.get(
                exc.status_code, "Error"
            ),
        },
        status_code=exc.status_code,
    )


class ConsoleRoute(RetryingRoute):
    """The API's route class (request checks, deadlock retries), answering pages: a domain
    error is its error page (another tenant's id is the 404 page), every page is sent with the
    security headers."""

    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await inner(request)
            except PenguinMailsError as exc:
                response = _error_page(request, exc)
            except RequestValidationError as exc:
                # Only a malformed path or query reaches here (forms are parsed by the pages):
                # an id that is not a UUID is no page of this tenant's; a control character
                # (api.checks) is refused as the API refuses it.
                first = exc.errors()[0] if exc.errors() else {}
                if first.get("type") == "control_character":
                    refused = ValidationFailed(str(first.get("msg", "invalid text")))
                    response = _error_page(request, refused)
                else:
                    response = _error_page(request, NotFound("no such page"))
            except DBAPIError as exc:
                mapped = database_error(exc)
                if mapped is None:
                    raise
                response = _error_page(request, mapped)
            response.headers.update(SECURITY_HEADERS)
            return response

        return handle


@dataclass(frozen=True)
class Signed:
    """The signed-in caller: the key's tenant, and the session's CSRF token."""

    key: ApiKey
    csrf: str

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.key.tenant_id


def signed_in(request: Request, settings: SettingsDep, transaction: TransactionDep) -> Signed:
    request.state.refresh_seconds = settings.console_refresh_seconds
    current = cookies.read(request, settings)
    if current is None or not current.api_key:
        raise Unauthorized("sign in with an API key")
    plaintext = current.api_key
    key = transaction(lambda s: tenants.authenticate(s, plaintext))
    try:
        transaction(lambda s: tenants.touch(s, key))
    except DBAPIError:
        log.warning("could not record the use of API key %s", key.prefix)
    request.state.csrf = current.csrf
    request.state.signed_in = True
    return Signed(key=key, csrf=current.csrf)


SignedIn = Annotated[Signed, Depends(signed_in)]


async def form_data(request: Request, settings: SettingsDep) -> dict[str, str]:
    """The posted form, after its CSRF token was checked against the session's. Only
    `application/x-www-form-urlencoded` is read, inside the API's body limit."""
    form = await request.form()
    cookies.check_csrf(cookies.read(request, settings), form.get(cookies.CSRF_FIELD))
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != cookies.CSRF_FIELD}
    # api.checks' rule for JSON bodies, for form bodies: no control character in any value.
    for name, value in values.items():
        problem = control_character_problem(name) or control_character_problem(value)
        if problem is not None:
            raise ValidationFailed(f"{name}: {problem}", field=name)
    return values


Form = Annotated[dict[str, str], Depends(form_data)]


def field_errors(exc: ValidationError | PenguinMailsError) -> dict[str, str]:
    """Messages by field, as the API words them (its 422 `details`), for beside the field."""
    if isinstance(exc, PenguinMailsError):
        return {exc.field or "form": exc.message}
    out: dict[str, str] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "form"
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            message = f"unknown field {field!r}"
        out.setdefault(field, message)
    return out


def settings_of(settings: Settings) -> Settings:
    return settings


def page_of(params: Mapping[str, str], size: int, total: int | None = None) -> tuple[int, int]:
    """(page number from 1, offset) from `?page=`; a bad number is the first page."""
    try:
        number = max(1, min(int(params.get("page", "1")), 1_000_000))
    except ValueError:
        number = 1
    return number, (number - 1) * size


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)
