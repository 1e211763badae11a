"""The console's session cookie: the API key and a CSRF token, encrypted and signed (Fernet,
with a key derived from the settings key for this purpose only) and expiring. `HttpOnly`,
`SameSite=Strict`, `Secure` when the request came over TLS. The key in it is authenticated
again on every request, so a revoked key ends its console sessions."""

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response

from kit.errors import Forbidden
from kit.secret_key import resolve_secret_key
from settings import Settings

COOKIE = "pm_console"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    api_key: str | None = None


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    digest = hashlib.sha256(b"penguinmails-console-session:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _box(settings: Settings) -> Fernet:
    return _fernet(resolve_secret_key(settings))


def read(request: Request, settings: Settings) -> ConsoleSession | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        raw = _box(settings).decrypt(token.encode(), ttl=settings.console_session_seconds)
        data = json.loads(raw)
        return ConsoleSession(csrf=str(data["c"]), api_key=data.get("k"))
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None


def new(api_key: str | None = None) -> ConsoleSession:
    return ConsoleSession(csrf=secrets.token_urlsafe(32), api_key=api_key)


def write(
    response: Response, request: Request, settings: Settings, session: ConsoleSession
) -> None:
    payload = json.dumps({"c": session.csrf, "k": session.api_key}).encode()
    response.set_cookie(
        COOKIE,
        _box(settings).encrypt(payload).decode(),
        max_age=settings.console_session_seconds,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def check_csrf(session: ConsoleSession | None, given: object) -> None:
    """Every console form carries the session's token; one without it (or with another's) is
    refused before anything is read or written."""
    if (
        session is None
        or not isinstance(given, str)
        or not hmac.compare_digest(session.csrf.encode(), given.encode())
    ):
        raise Forbidden(
            "the form's security token is missing or expired; reload the page and submit again",
            field=CSRF_FIELD,
        )
