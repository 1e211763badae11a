"""Real servers on loopback for the health tests, on an event loop in a background thread (the
code under test runs its own loop): SSH (asyncssh), SMTP with STARTTLS (aiosmtpd), TLS listeners
serving Stalwart's HTTP endpoints, a DNS server (dnspython over UDP), a port that accepts and never
answers (a closed port is `tests.support.ports.free_port()`)."""

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import asyncssh
import dns.message
import dns.rcode
import dns.rrset
from aiosmtpd.smtp import SMTP

from tests.support.stalwart_metrics import PrometheusEndpoint

T = TypeVar("T")

Responder = Callable[[str], tuple[str, int]]


@dataclass
class HttpState:
    """What the TLS listener on the HTTPS port answers, and what it saw."""

    ready_status: int = 200
    queue_status: int = 200
    queue_items: list[dict[str, Any]] = field(default_factory=list)
    queue_total: int | None = None
    authorizations: list[str | None] = field(default_factory=list)
    # v0.16: `POST /jmap/` answered by this fake's management logic (tests/support/stalwart.py).
    jmap: Any = None
    # v0.12-v0.15 `GET /api/logs` items; None: 404.
    log_items: list[dict[str, Any]] | None = None
    # `GET /metrics/prometheus`: anything with `answer(authorization) -> (status, text)`.
    prometheus: Any = field(default_factory=PrometheusEndpoint)
    connections: int = 0  # TLS connections (handshakes completed) on the HTTPS port
    requests: list[str] = field(default_factory=list)  # request paths, in order
    keep_alive: bool = True  # False: answer `Connection: close` (an HTTP/1.1 server may)


class Lab:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.AbstractServer | asyncssh.SSHAcceptor] = []
        self._transports: list[asyncio.BaseTransport] = []
        self.ssh_commands: list[str] = []

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for transport in self._transports:
                transport.close()

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def stop(self, server: asyncio.AbstractServer | asyncssh.SSHAcceptor) -> None:
        async def go() -> None:
            server.close()

        self.call(go())

    # --- servers ---------------------------------------------------------------------------

    def _port(self, server: asyncio.AbstractServer | asyncssh.SSHAcceptor) -> int:
        sockets = server.sockets
        return int(sockets[0].getsockname()[1])

    def hang(self, address: str = "127.0.0.1", port: int = 0) -> tuple[asyncio.AbstractServer, int]:
        """Accepts connections and never says a word."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the client gives up
            writer.close()

        server = self.call(asyncio.start_server(handler, address, port))
        self._servers.append(server)
        return server, self._port(server)

    def smtp(
        self,
        hostname: str,
        tls: ssl.SSLContext | None,
        address: str = "127.0.0.1",
        port: int = 0,
    ) -> tuple[asyncio.AbstractServer, int]:
        class Handler:
            pass

        def factory() -> SMTP:
            return SMTP(Handler(), hostname=hostname, tls_context=tls, ident="ESMTP test")

        async def start() -> asyncio.AbstractServer:
            return await asyncio.get_running_loop().create_server(factory, address, port)

        server = self.call(start())
        self._servers.append(server)
        return server, self._port(server)

    def tls_listener(
        self,
        ctx: ssl.SSLContext,
        address: str = "127.0.0.1",
        port: int = 0,
        *,
        greeting: bytes = b"",
        http: HttpState | None = None,
    ) -> tuple[asyncio.AbstractServer, int]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                if http is not None:
                    http.connections += 1
                if greeting:
                    writer.write(greeting)
                    await writer.drain()
                if http is None:
                    await reader.read()
                    return
                # HTTP/1.1 persistent connections (RFC 9112 section 9): requests one after
                # another until either side says `Connection: close`, or the client goes.
                while True:
                    try:
                        head = (await reader.readuntil(b"\r\n\r\n")).decode()
                    except asyncio.IncompleteReadError:
                        return  # the client closed between requests
                    headers = _headers(head)
                    length = int(headers.get("content-length", "0") or 0)
                    body = await reader.readexactly(length) if length else b""
                    last = (
                        not http.keep_alive
                        or "close" in headers.get("connection", "").lower()
                        or head.split("\r\n", 1)[0].endswith("HTTP/1.0")
                    )
                    writer.write(_http_answer(head, http, body, last))
                    await writer.drain()
                    if last:
                        return
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = self.call(asyncio.start_server(handler, address, port, ssl=ctx))
        self._servers.append(server)
        return server, self._port(server)

    def ssh(
        self, authorized_key: str, responder: Responder, address: str = "127.0.0.1", port: int = 0
    ) -> tuple[asyncssh.SSHAcceptor, int]:
        host_key = asyncssh.generate_private_key("ssh-ed25519")

        def process(proc: asyncssh.SSHServerProcess[str]) -> None:
            cmd = proc.command or ""
            self.ssh_commands.append(cmd)
            stdout, status = responder(cmd)
            proc.stdout.write(stdout)
            proc.exit(status)

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                asyncssh.SSHServer,
                address,
                port,
                server_host_keys=[host_key],
                authorized_client_keys=asyncssh.import_authorized_keys(authorized_key),
                process_factory=process,
            )

        server = self.call(start())
        self._servers.append(server)
        return server, self._port(server)

    def dns(self, answers: dict[str, list[str]], silent: set[str] | None = None) -> int:
        """A records by name; names in `silent` get no reply at all (timeouts); others NXDOMAIN."""
        silent = silent or set()

        class Protocol(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = cast(asyncio.DatagramTransport, transport)

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                query = dns.message.from_wire(data)
                name = query.question[0].name.to_text().lower()
                if name in silent:
                    return
                response = dns.message.make_response(query)
                if name in answers:
                    response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", *answers[name]))
                else:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                self.transport.sendto(response.to_wire(), addr)

        async def start() -> asyncio.BaseTransport:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                Protocol, local_addr=("127.0.0.1", 0)
            )
            return transport

        transport = self.call(start())
        self._transports.append(transport)
        return int(transport.get_extra_info("sockname")[1])


def _headers(head: str) -> dict[str, str]:
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _http_answer(head: str, state: HttpState, request_body: bytes, last: bool) -> bytes:
    path = head.split("\r\n", 1)[0].split(" ")[1]
    state.requests.append(path)
    headers = _headers(head)
    ctype = "application/json"
    if path == "/healthz/ready":
        status, body = state.ready_status, b""
    elif path == "/jmap/" and state.jmap is not None:
        state.authorizations.append(headers.get("authorization"))
        auth = headers.get("authorization", "")
        creds = None
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            creds = (user, password)
        status, answer = state.jmap.jmap_http(creds, headers.get("content-type", ""), request_body)
        body = json.dumps(answer).encode()
    elif path.startswith("/api/logs") and state.log_items is not None:
        state.authorizations.append(headers.get("authorization"))
        status = 200
        logs = {"data": {"items": state.log_items, "total": len(state.log_items)}}
        body = json.dumps(logs).encode()
    elif path == "/metrics/prometheus":
        status, text = state.prometheus.answer(headers.get("authorization"))
        ctype, body = "text/plain; version=0.0.4", text.encode()
    elif path.startswith("/api/queue/messages"):
        state.authorizations.append(headers.get("authorization"))
        total = len(state.queue_items) if state.queue_total is None else state.queue_total
        status = state.queue_status
        body = json.dumps({"data": {"items": state.queue_items, "total": total}}).encode()
    else:
        status, body = 404, b""
    close = "Connection: close\r\n" if last else ""
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"{close}\r\n".encode()
        + body
    )


def df_output(total: int, used: int, mount: str = "/var/lib/stalwart") -> str:
    available = total - used
    pct = round(100 * used / total)
    return (
        "Filesystem     1B-blocks        Used   Available Capacity Mounted on\n"
        f"/dev/sda1      {total} {used} {available} {pct}% {mount}\n"
    )
