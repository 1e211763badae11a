"""Webhook signatures: `PenguinMails-Signature: t=<unix seconds>,v1=<hex>` where hex is
HMAC-SHA256(secret, "<t>." + raw body). The timestamp inside the MAC lets a receiver refuse
replays older than its tolerance."""

import hashlib
import hmac
import secrets
import time

HEADER = "PenguinMails-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """What a receiver runs: the MAC matches and the timestamp is recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
