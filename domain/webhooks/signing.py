"""Webhook signatures, Stripe-style:

    PenguinMails-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]

each hex is HMAC-SHA256(secret, "<t>." + raw body). The timestamp inside the MAC lets a receiver
refuse replays older than its tolerance. There is one `v1` per secret in use: after
`POST /webhooks/{id}/rotate-secret`, for `PENGUINMAILS_WEBHOOK_SECRET_GRACE_SECONDS`, the new
secret's signature comes first and the previous secret's last, so a receiver still holding the old
secret verifies, and so does one that already has the new. A receiver must accept the request
when any `v1` matches (`verify` does); one that reads only the last `v1` keeps working on the old
secret until it switches."""

import hashlib
import hmac
import secrets
import time

HEADER = "PenguinMails-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int, *, previous: str | None = None) -> str:
    """The header value: `secret`'s signature, then `previous`'s while it is still valid."""
    parts = [f"t={timestamp}", f"v1={_mac(secret, body, timestamp)}"]
    if previous is not None:
        parts.append(f"v1={_mac(previous, body, timestamp)}")
    return ",".join(parts)


def verify(
    secret: str, header: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """What a receiver runs: one of the `v1` signatures matches and the timestamp is recent."""
    pairs = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [value for key, value in pairs if key == "t"]
    try:
        timestamp = int(stamps[0])
    except (IndexError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = _mac(secret, body, timestamp)
    # compare every candidate (no early exit on the first match)
    matched = [hmac.compare_digest(expected, value) for key, value in pairs if key == "v1"]
    return any(matched)
