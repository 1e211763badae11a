"""A `Backend` for a DNS connection's kind, settings and credentials."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dnspublish.backends import Backend, PublishError

KINDS = ("rfc2136", "lexicon", "cloudflare", "hetzner", "manual")


def backend_for(
    kind: str, settings: Mapping[str, Any], credentials: Mapping[str, str], timeout: float = 3.0
) -> Backend | None:
    """None for `manual` (nothing is published)."""
    if kind == "manual":
        return None
    if kind == "rfc2136":
        from dnspublish.rfc2136 import Rfc2136

        return Rfc2136(
            server=str(settings["server"]),
            key_name=str(settings["tsig_key_name"]),
            secret=str(credentials.get("tsig_secret", "")),
            algorithm=str(settings.get("tsig_algorithm") or "hmac-sha256"),
            timeout=timeout,
        )
    if kind in ("lexicon", "cloudflare", "hetzner"):
        from dnspublish.lexicon import LexiconBackend

        if kind == "lexicon":
            return LexiconBackend(str(settings["provider"]), dict(credentials), timeout=timeout)
        return LexiconBackend(kind, {"auth_token": str(credentials.get("api_token", ""))},
                              timeout=timeout)  # fmt: skip
    raise PublishError(f"unknown DNS connection kind {kind!r}")
