"""One kept-alive HTTP/1.1 connection over TLS to a server's HTTPS port, for a whole sweep.

Its handshake is the port's TLS observation (the certificate check), and `/healthz/ready` and
the management API ride on it one request at a time (no pipelining), so a server costs one
handshake on 443 instead of one per request. HTTP/1.1 semantics, followed for real: a response
that says `Connection: close`, an HTTP/1.0 one, or a body read to EOF ends the connection, and the
next request opens a new one with the same context; a kept-alive connection the server closed
while idle (its keep-alive timeout racing our request) is reopened once, since every request
sent here is a read. A request that times out or breaks midway leaves the stream in an unknown
state: the connection is closed and later requests fail at once with the same error, so a server
that hangs after the handshake costs one timeout, not one per request."""

import asyncio
import ssl

from probes.net import (
    HttpResponse,
    TlsObservation,
    close,
    describe,
    peer_certificate,
    read_response,
    request_head,
)

_READ_ERRORS = (OSError, ssl.SSLError, asyncio.IncompleteReadError)


class HttpsConnection:
    def __init__(
        self,
        address: str,
        port: int,
        hostname: str,
        verifying: ssl.SSLContext,
        reading: ssl.SSLContext,
        *,
        timeout: float,
    ) -> None:
        self.address, self.port, self.hostname = address, port, hostname
        self.verifying, self.reading = verifying, reading
        self.timeout = timeout  # per request, counted once it holds the connection
        self.observation: TlsObservation | None = None
        self.handshakes = 0
        self._context: ssl.SSLContext | None = None  # the one the observation's handshake used
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._refusal: BaseException | None = None  # why nothing can be sent here
        self._lock = asyncio.Lock()

    @property
    def verified(self) -> bool:
        """The chain and name verified: only then may credentials be sent."""
        return self.observation is not None and self.observation.verified

    async def _handshake(
        self, ctx: ssl.SSLContext
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.handshakes += 1
        return await asyncio.open_connection(
            self.address, self.port, ssl=ctx, server_hostname=self.hostname
        )

    def _der(self) -> bytes | None:
        assert self._stream is not None
        der: bytes | None = self._stream[1].get_extra_info("ssl_object").getpeercert(True)
        return der

    async def open(self) -> TlsObservation:
        """Handshake with verification; when the chain or name is refused, handshake again
        without it to read what the server presents (expiry, names) for the detail, and keep
        that connection for requests that carry no credentials."""
        self._refusal = TimeoutError()  # until a handshake ends: the deadline may cut it short
        try:
            self._stream = await self._handshake(self.verifying)
        except ssl.SSLCertVerificationError as exc:
            error, refusal = describe(exc), exc
        except _READ_ERRORS as exc:
            self._refusal = exc
            self.observation = TlsObservation(self.port, False, False, describe(exc), None)
            return self.observation
        else:
            self._context, self._refusal = self.verifying, None
            self.observation = TlsObservation(
                self.port, True, True, None, peer_certificate(self._der())
            )
            return self.observation
        try:
            self._stream = await self._handshake(self.reading)
        except _READ_ERRORS as exc:
            self._refusal = exc
            self.observation = TlsObservation(
                self.port, False, False, f"{error}; {describe(exc)}", None
            )
            return self.observation
        # Credentials are refused with the verification error; plain reads may go.
        self._context, self._refusal = self.reading, refusal
        self.observation = TlsObservation(
            self.port, True, False, error, peer_certificate(self._der())
        )
        return self.observation

    async def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
        max_body: int = 4 * 1024 * 1024,
    ) -> HttpResponse:
        """One read-only request (it may be sent twice, see the module's docstring); with
        `authorization`, only over a verified connection (else the verification error is raised
        and nothing is sent). After open(), whatever it returned or raised."""
        async with self._lock:
            if self._context is None or (authorization is not None and not self.verified):
                raise self._refusal or RuntimeError("request() before open()")
            head = request_head(
                method, path, self.hostname, authorization, body, content_type, False
            )
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._exchange(head, max_body)
            except BaseException as exc:
                # Mid-request: whatever is left on the stream cannot be trusted.
                await self._drop()
                self._context = None
                self._refusal = exc if isinstance(exc, Exception) else TimeoutError()
                raise

    async def _exchange(self, head: bytes, max_body: int) -> HttpResponse:
        assert self._context is not None
        reused = self._stream is not None
        if self._stream is None:
            self._stream = await self._handshake(self._context)
        try:
            return await self._send(head, max_body)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
        # Closed by the server while idle: once more on a new connection.
        await self._drop()
        self._stream = await self._handshake(self._context)
        return await self._send(head, max_body)

    async def _send(self, head: bytes, max_body: int) -> HttpResponse:
        assert self._stream is not None
        reader, writer = self._stream
        writer.write(head)
        await writer.drain()
        response, reusable = await read_response(reader, max_body)
        if not reusable:
            await self._drop()
        return response

    async def _drop(self) -> None:
        if self._stream is not None:
            writer = self._stream[1]
            self._stream = None
            await close(writer)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
