"""Small socket helpers on asyncio streams: connect, a TLS handshake that reports what the peer
presented, and a one-request HTTP/1.1 GET. Callers bound the time with asyncio.timeout."""

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509


@dataclass(frozen=True)
class PeerCertificate:
    subject: str
    issuer: str
    not_after: datetime
    names: tuple[str, ...]


@dataclass(frozen=True)
class TlsObservation:
    """One TLS endpoint: did a handshake complete, was the chain+name trusted, what was shown."""

    port: int
    handshake: bool
    verified: bool
    error: str | None
    certificate: PeerCertificate | None


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    return str(exc) or type(exc).__name__


def peer_certificate(der: bytes | None) -> PeerCertificate | None:
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return PeerCertificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
        names=names,
    )


async def tls_observe(
    address: str,
    port: int,
    hostname: str,
    verifying: ssl.SSLContext,
    reading: ssl.SSLContext,
) -> TlsObservation:
    """Handshake with verification; when the chain or name is refused, handshake again without
    it to read what the server presents (expiry, names) for the detail."""
    try:
        _, writer = await asyncio.open_connection(
            address, port, ssl=verifying, server_hostname=hostname
        )
    except ssl.SSLCertVerificationError as exc:
        error = describe(exc)
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        return TlsObservation(port, False, False, describe(exc), None)
    else:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        await close(writer)
        return TlsObservation(port, True, True, None, peer_certificate(der))
    try:
        _, writer = await asyncio.open_connection(
            address, port, ssl=reading, server_hostname=hostname
        )
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        return TlsObservation(port, False, False, f"{error}; {describe(exc)}", None)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    await close(writer)
    return TlsObservation(port, True, False, error, peer_certificate(der))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


async def http_get(
    address: str,
    port: int,
    path: str,
    *,
    host: str,
    ssl_context: ssl.SSLContext | None,
    authorization: str | None = None,
    max_body: int = 4 * 1024 * 1024,
) -> HttpResponse:
    """One GET with `Connection: close`; reads to EOF (or Content-Length), de-chunks."""
    return await http_request(
        address,
        port,
        path,
        host=host,
        ssl_context=ssl_context,
        authorization=authorization,
        max_body=max_body,
    )


async def http_request(
    address: str,
    port: int,
    path: str,
    *,
    host: str,
    ssl_context: ssl.SSLContext | None,
    method: str = "GET",
    body: bytes | None = None,
    content_type: str | None = None,
    authorization: str | None = None,
    max_body: int = 4 * 1024 * 1024,
) -> HttpResponse:
    """One request with `Connection: close`; reads to EOF (or Content-Length), de-chunks."""
    reader, writer = await asyncio.open_connection(
        address, port, ssl=ssl_context, server_hostname=host if ssl_context else None
    )
    try:
        writer.write(request_head(method, path, host, authorization, body, content_type, True))
        await writer.drain()
        response, _ = await read_response(reader, max_body)
        return response
    finally:
        await close(writer)


def request_head(
    method: str,
    path: str,
    host: str,
    authorization: str | None,
    body: bytes | None,
    content_type: str | None,
    last: bool,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: */*"]
    if last:
        lines.append("Connection: close")
    if authorization:
        lines.append(f"Authorization: {authorization}")
    if body is not None:
        lines.append(f"Content-Type: {content_type or 'application/octet-stream'}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def read_response(reader: asyncio.StreamReader, max_body: int) -> tuple[HttpResponse, bool]:
    """The response and whether the connection may carry another request (HTTP/1.1: unless
    either side said `Connection: close`, or the body runs to EOF; HTTP/1.0: never)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
    status = int(parts[1])
    headers = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    reusable = parts[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader, max_body)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > max_body:
            raise ValueError("response body too large")
        body = await reader.readexactly(length)
    else:
        body, reusable = await reader.read(max_body), False
    return HttpResponse(status, body), reusable


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks: list[bytes] = []
    size_total = 0
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            # The trailer section ends with an empty line; read it so the next response
            # on a kept-alive connection starts where it should.
            while (await reader.readline()).strip():
                pass
            return b"".join(chunks)
        size_total += size
        if size_total > max_body:
            raise ValueError("response body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
