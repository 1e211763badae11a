"""Stalwart's management API as the probes and server operations reach it: HTTPS on the public
port, admin Basic auth, and only over a connection whose certificate verified (credentials are
never sent otherwise). Both generations:

- v0.16+: JMAP, `POST /jmap/` (crates/jmap-proto capability.rs `api_url`), `using`
  `urn:ietf:params:jmap:core` + `urn:stalwart:jmap`, `application/json` (request.rs). Errors
  arrive with HTTP 200 as `["error", {"type": ...}]` method responses: raised as `ApiError`.
  Queue: `x:QueuedMessage/query` + `/get` (`createdAt`); logs: `x:Log/query` + `/get`
  (`timestamp`, `level`, `event`, `details`); certificates: `x:Certificate/get`
  (`notValidAfter`) (docs/ref/object/{queued-message,log,certificate}.md).
- v0.12-v0.15: REST, `GET /api/queue/messages?values=1&limit=N` (queue.rs) and
  `GET /api/logs?limit=N` (management/mod.rs `"logs" if GET`), `{"data": ...}` or HTTP 200
  `{"error": ...}`.

A target without a known version is asked over REST first; a 404 there (v0.16 has no `/api`
queue route: `ResourceEvent::NotFound`) falls through to JMAP. The v0.16 admin is
`admin@<hostname>` (accounts are email shaped), the v0.12-v0.15 one `admin`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import ssl
from typing import Any

from probes.https import HttpsConnection
from probes.net import http_request
from probes.types import Target

USING = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"]
_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


class ApiError(Exception):
    """The API answered, with an error (HTTP or inside a 200)."""


class NotFoundError(ApiError):
    """HTTP 404: this generation's endpoint does not exist on the server."""


def generation(version: str | None) -> str | None:
    """ "jmap" for v0.16+, "rest" for v0.12-v0.15, None when unknown."""
    match = _TAG.match(version or "")
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    return "rest" if (major, minor) < (0, 16) else "jmap"


def _auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def jmap_user(target: Target) -> str:
    return (
        target.admin_user if "@" in target.admin_user else f"{target.admin_user}@{target.hostname}"
    )


async def _request(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    path: str,
    user: str,
    body: Any = None,
    conn: HttpsConnection | None = None,
) -> Any:
    assert target.admin_password is not None
    method = "GET" if body is None else "POST"
    payload = None if body is None else json.dumps(body).encode()
    authorization = _auth(user, target.admin_password)
    if conn is not None:
        # The sweep's kept-alive connection: it sends credentials only if it verified.
        response = await conn.request(
            path,
            method=method,
            body=payload,
            content_type="application/json",
            authorization=authorization,
        )
    else:
        response = await http_request(
            target.address,
            port,
            path,
            host=target.hostname,
            ssl_context=ctx,
            method=method,
            body=payload,
            content_type="application/json",
            authorization=authorization,
        )
    if response.status == 404:
        raise NotFoundError(f"{path} not found")
    if response.status != 200:
        detail = ""
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(response.body).get("detail") or "")
        raise ApiError(f"{path} answered {response.status}" + (f": {detail}" if detail else ""))
    try:
        return json.loads(response.body)
    except ValueError as exc:
        raise ApiError(f"unreadable answer from {path}: {exc}") from None


async def jmap(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    *calls: tuple[str, dict[str, Any]],
    conn: HttpsConnection | None = None,
) -> list[dict[str, Any]]:
    body = {"using": USING, "methodCalls": [[m, a, f"c{i}"] for i, (m, a) in enumerate(calls)]}
    reply = await _request(target, port, ctx, "/jmap/", jmap_user(target), body, conn)
    responses = reply.get("methodResponses") if isinstance(reply, dict) else None
    if not isinstance(responses, list) or len(responses) != len(calls):
        raise ApiError("JMAP answer without one response per method call")
    out = []
    for (method, _), (name, result, *_) in zip(calls, responses, strict=True):
        if name == "error":
            kind = result.get("type") if isinstance(result, dict) else result
            raise ApiError(f"{method}: {kind}")
        out.append(result)
    return out


async def rest(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    path: str,
    conn: HttpsConnection | None = None,
) -> Any:
    reply = await _request(target, port, ctx, path, target.admin_user, conn=conn)
    if isinstance(reply, dict) and "error" in reply:
        raise ApiError(f"{path}: {reply['error']}")
    if not isinstance(reply, dict) or "data" not in reply:
        raise ApiError(f"unreadable answer from {path}")
    return reply["data"]


async def _jmap_get(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    kind: str,
    limit: int,
    props: list[str],
    conn: HttpsConnection | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    (query,) = await jmap(
        target,
        port,
        ctx,
        (f"x:{kind}/query", {"limit": int(limit), "calculateTotal": True}),
        conn=conn,
    )
    ids = list(query.get("ids") or [])[: int(limit)]
    total = int(query.get("total", len(ids)))
    if not ids:
        return total, []
    (got,) = await jmap(
        target, port, ctx, (f"x:{kind}/get", {"ids": ids, "properties": props}), conn=conn
    )
    return total, [o for o in got.get("list") or [] if isinstance(o, dict)]


async def _either(target: Target, rest_call: Any, jmap_call: Any) -> Any:
    kind = generation(target.stalwart_version)
    if kind == "jmap":
        return await jmap_call()
    try:
        return await rest_call()
    except NotFoundError:
        if kind == "rest":
            raise
        return await jmap_call()


async def queue(
    target: Target,
    port: int,
    ctx: ssl.SSLContext,
    limit: int,
    conn: HttpsConnection | None = None,
) -> dict[str, Any]:
    """{"total": N, "items": [{"created": RFC 3339}, ...]} whatever the generation."""

    async def over_rest() -> dict[str, Any]:
        path = f"/api/queue/messages?values=1&limit={int(limit)}"
        data = await rest(target, port, ctx, path, conn)
        return {"total": data["total"], "items": data.get("items", [])}

    async def over_jmap() -> dict[str, Any]:
        total, items = await _jmap_get(
            target, port, ctx, "QueuedMessage", limit, ["createdAt"], conn
        )
        return {"total": total, "items": [{"created": i.get("createdAt")} for i in items]}

    result: dict[str, Any] = await _either(target, over_rest, over_jmap)
    return result


def _line(entry: dict[str, Any]) -> str:
    details = entry.get("details")
    if isinstance(details, dict | list):
        details = json.dumps(details, sort_keys=True)
    parts = [entry.get("timestamp"), entry.get("level"), entry.get("event"), details]
    return " ".join(str(p) for p in parts if p not in (None, ""))


async def logs(target: Target, port: int, ctx: ssl.SSLContext, limit: int) -> tuple[str, list[str]]:
    """(source, lines): Stalwart's own log entries, oldest first."""

    async def over_rest() -> tuple[str, list[str]]:
        data = await rest(target, port, ctx, f"/api/logs?limit={int(limit)}")
        items = data.get("items", []) if isinstance(data, dict) else data
        return "Stalwart GET /api/logs", [_line(i) for i in items if isinstance(i, dict)]

    async def over_jmap() -> tuple[str, list[str]]:
        _, items = await _jmap_get(
            target, port, ctx, "Log", limit, ["timestamp", "level", "event", "details"]
        )
        items.sort(key=lambda i: str(i.get("timestamp", "")))
        return "Stalwart JMAP x:Log", [_line(i) for i in items]

    result: tuple[str, list[str]] = await _either(target, over_rest, over_jmap)
    return result


async def certificates(
    target: Target, port: int, ctx: ssl.SSLContext, conn: HttpsConnection | None = None
) -> list[dict[str, Any]]:
    """v0.16+ only: the certificates Stalwart manages, with `notValidAfter`."""
    (got,) = await jmap(
        target,
        port,
        ctx,
        ("x:Certificate/get", {"ids": None, "properties": ["notValidAfter"]}),
        conn=conn,
    )
    return [c for c in got.get("list") or [] if isinstance(c, dict) and c.get("notValidAfter")]
