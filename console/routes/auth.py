"""Sign-in with an API key, sign-out."""

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep, TransactionDep
from console import session as cookies
from console.web import ConsoleRoute, Form, redirect, render
from domain.tenants import service as tenants
from kit.errors import Unauthorized

router = APIRouter(route_class=ConsoleRoute, prefix="/console", include_in_schema=False)


def _next(target: str | None) -> str:
    # Only a console path: never an open redirect to another site.
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


@router.get("/sign-in")
def sign_in_page(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    current = cookies.read(request, settings)
    fresh = current is None
    session = current if current is not None else cookies.new()
    response = render(request, "sign_in.html", {"next": _next(next)}, csrf=session.csrf)
    if fresh:  # an existing session (signed in or not) is kept as it is
        cookies.write(response, request, settings, session)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request, form: Form, settings: SettingsDep, transaction: TransactionDep
) -> Response:
    plaintext = form.get("api_key", "").strip()
    target = _next(form.get("next"))
    try:
        if not plaintext:
            raise Unauthorized("enter an API key", field="api_key")
        transaction(lambda s: tenants.authenticate(s, plaintext))
    except Unauthorized as exc:
        current = cookies.read(request, settings) or cookies.new()
        errors = {"api_key": exc.message}
        return render(
            request,
            "sign_in.html",
            {"next": target, "errors": errors},
            status_code=401,
            csrf=current.csrf,
        )
    response = redirect(target)
    # A fresh CSRF token with the new sign-in: a token seen before it is worth nothing after.
    cookies.write(response, request, settings, cookies.new(plaintext))
    return response


@router.post("/sign-out")
def sign_out(request: Request, form: Form) -> Response:
    response = redirect("/console/sign-in")
    cookies.clear(response, request)
    return response
