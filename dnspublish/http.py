"""The small JSON-over-HTTPS client the Cloudflare and Hetzner backends share: one
`requests.Session` (tests mount a fake API on it as a transport adapter), bounded timeouts, and
every failure turned into a `PublishError` that says what the API said."""

from __future__ import annotations

from typing import Any

import requests

from dnspublish.backends import PublishError, Unreachable


class JsonApi:
    def __init__(
        self,
        base: str,
        token: str,
        *,
        name: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base = base.rstrip("/")
        self.name = name
        self.timeout = timeout
        self._token = token
        self.session = session or requests.Session()

    def __repr__(self) -> str:  # never the token
        return f"JsonApi({self.base!r})"

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        ok_missing: bool = False,
    ) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            response = self.session.request(
                method,
                self.base + path,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.Timeout:
            raise Unreachable(
                f"{what}: no answer from {self.name} within {self.timeout:g}s"
            ) from None
        except requests.RequestException as exc:
            raise Unreachable(f"{what}: cannot reach {self.name}: {exc}") from None
        if response.status_code == 404 and ok_missing:
            return None
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400 or payload.get("success") is False:
            raise PublishError(
                f"{what}: {self.name} answered HTTP {response.status_code}: "
                f"{_message(payload) or response.text[:300]}"
            )
        return payload


def _message(payload: dict[str, Any]) -> str:
    errors = payload.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors)
    error = payload.get("error")
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('message', '')}"
    return ""
