"""Access tokens for Postmaster from a Google service-account key: the OAuth 2.0 JWT bearer
grant (RFC 7523 section 2.1, as Google's "Using OAuth 2.0 for Server to Server Applications"
describes it).

The assertion is a JWT signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 3.3) with the
key's `private_key`; header `{"alg": "RS256", "typ": "JWT", "kid": private_key_id}`; claims `iss`
(the key's `client_email`), `scope` (postmaster.traffic.readonly), `aud` (the token URL),
`iat` and `exp` (at most one hour later). It is POSTed form-encoded as
`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>` and the answer is
`{"access_token", "expires_in", "token_type": "Bearer"}` (RFC 6749 5.1) or
`{"error", "error_description"}` (5.2).

The token URL is the `google_token_url` setting, never the key file's own `token_uri`: a signed
assertion is sent only where the operator configured, not wherever a pasted JSON points. Tokens
are cached in this process until five minutes before they expire. The signing itself is
`cryptography`'s (already a dependency); a JWT is only its base64url framing."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from domain.reputation.clients import ConnectorError
from kit.errors import ValidationFailed

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME = 3600  # Google refuses assertions valid for more than an hour
MARGIN = timedelta(minutes=5)
FIELD = "service_account"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _key(pem: Any) -> rsa.RSAPrivateKey:
    field = f"{FIELD}.private_key"
    if not isinstance(pem, str) or "PRIVATE KEY" not in pem:
        raise ValidationFailed(f"{field} must be a PEM private key", field=field)
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # The parser's message is dropped: it may quote the input.
        raise ValidationFailed(
            f"{field} is not a readable unencrypted private key", field=field
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationFailed(f"{field} must be an RSA key (RS256)", field=field)
    return key


def validate(info: Any) -> dict[str, str]:
    """The parts of a service-account key JSON the grant uses; 422 naming the field at fault.
    Nothing of the key is echoed in a message."""
    if not isinstance(info, dict):
        raise ValidationFailed(f"{FIELD} must be a service-account key object", field=FIELD)
    if info.get("type") != "service_account":
        raise ValidationFailed(f'{FIELD}.type must be "service_account"', field=f"{FIELD}.type")
    email = info.get("client_email")
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise ValidationFailed(
            f"{FIELD}.client_email must be the service account's address",
            field=f"{FIELD}.client_email",
        )
    key_id = info.get("private_key_id", "")
    if not isinstance(key_id, str) or len(key_id) > 200:
        raise ValidationFailed(
            f"{FIELD}.private_key_id must be a string", field=f"{FIELD}.private_key_id"
        )
    _key(info.get("private_key"))
    return {"client_email": email, "private_key_id": key_id, "private_key": info["private_key"]}


def assertion(info: dict[str, str], token_url: str, scope: str, now: datetime) -> str:
    iat = int(now.timestamp())
    header = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = info["private_key_id"]
    claims = {
        "iss": info["client_email"],
        "scope": scope,
        "aud": token_url,
        "iat": iat,
        "exp": iat + LIFETIME,
    }
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = _key(info["private_key"]).sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64(signature)}"


@dataclass
class _Token:
    value: str
    refresh_at: datetime


_cache: dict[str, _Token] = {}
_lock = threading.Lock()


def _cache_key(info: dict[str, str], token_url: str, scope: str) -> str:
    material = "\0".join([info["client_email"], info["private_key"], token_url, scope])
    return hashlib.sha256(material.encode()).hexdigest()


def access_token(
    info: dict[str, str], token_url: str, scope: str, timeout: float, now: datetime
) -> str:
    """A bearer token for `scope`: the cached one while it has more than five minutes left,
    else a new exchange. Raises ConnectorError (no secret in its message)."""
    key = _cache_key(info, token_url, scope)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and now < cached.refresh_at:
            return cached.value
    form = {"grant_type": GRANT_TYPE, "assertion": assertion(info, token_url, scope, now)}
    try:
        response = httpx.post(token_url, data=form, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"token request failed: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    token, expires = body.get("access_token"), body.get("expires_in")
    if response.status_code != 200 or not isinstance(token, str) or not token:
        error = body.get("error")
        error = error if isinstance(error, str) else ""
        detail = f"HTTP {response.status_code} {error[:64]}".strip()
        raise ConnectorError(f"service-account token refused ({detail})")
    seconds = expires if isinstance(expires, int) and not isinstance(expires, bool) else 0
    refresh_at = now + timedelta(seconds=seconds) - MARGIN
    with _lock:
        _cache[key] = _Token(token, refresh_at)
    return token
