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
    if kind == "lexicon":
        from dnspublish.lexicon import LexiconBackend

        return LexiconBackend(str(settings["provider"]), dict(credentials), timeout=timeout)
    if kind == "cloudflare":
        from dnspublish.cloudflare import CloudflareBackend

        return CloudflareBackend(str(credentials.get("api_token", "")), timeout=timeout)
    if kind == "hetzner":
        from dnspublish.hetzner import HetznerBackend

        return HetznerBackend(str(credentials.get("api_token", "")), timeout=timeout)
    raise PublishError(f"unknown DNS connection kind {kind!r}")
