"""Request body limit, as pure ASGI middleware (no BaseHTTPMiddleware: nothing is buffered).

A body over `PENGUINMAILS_MAX_BODY_BYTES` is a 413 `payload_too_large` (field `body`) in the one
error shape:
- with a Content-Length over the limit, before the application runs and before a byte of the
  body is read (so no `100 Continue` either);
- chunked (or a Content-Length that lies), as soon as the bytes received pass the limit: the
  application's next `receive()` raises, nothing more is read from the client, and whatever the
  application was about to answer is replaced by the 413.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import render
from kit.errors import PayloadTooLarge
from settings import get_settings


class BodyTooLarge(HTTPException):
    """Raised from `receive()` once over the limit. An HTTPException, because FastAPI turns any
    other error while reading a body into a 400 and lets this one through."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_message(limit))


def _message(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed one; count the bytes anyway
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes if self.max_bytes is not None else get_settings().max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _reject(scope, send, limit)
            return

        received = 0
        exceeded = False
        started = False  # a response start went to the client
        replaced = False  # our 413 went instead of the application's answer

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:  # never read past the limit, however often the application asks
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if exceeded and not started and message["type"] == "http.response.start":
                # The application answered something else (it caught the error): answer 413.
                replaced = True
                await _reject(scope, send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
            if not replaced:
                await _reject(scope, send, limit)


async def _reject(scope: Scope, send: Send, limit: int) -> None:
    response = render(PayloadTooLarge(_message(limit), field="body", limit_bytes=limit))
    # The unread rest of the body makes the connection unusable for another request.
    response.headers["Connection"] = "close"

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
