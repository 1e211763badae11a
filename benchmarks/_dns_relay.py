"""A UDP relay that adds latency: it listens on one loopback address and forwards each datagram
to the DNS server after `delay` seconds, and each reply back after `delay` again. Stands in for
netem, which these machines lack. Run it in its own process so it does not share the
benchmark's event loop (or its CPU)."""

import asyncio
import contextlib
import multiprocessing
import multiprocessing.process
import multiprocessing.synchronize
import socket
import time
from typing import Any, cast

# Bursts of hundreds of datagrams arrive at once; the default buffer (~200 KB) drops some, and
# each drop costs the client a timeout that a real network path (or netem) would not add.
BUFFER = 4 * 1024 * 1024


def _socket(
    bind: tuple[str, int] | None = None, connect: tuple[str, int] | None = None
) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
    if bind is not None:
        sock.bind(bind)
    if connect is not None:
        sock.connect(connect)
    sock.setblocking(False)
    return sock


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: "_Relay", client: tuple[str, int]) -> None:
        self.relay, self.client = relay, client
        self.transport: asyncio.DatagramTransport | None = None
        self.last_used = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last_used = time.monotonic()
        self.relay.loop.call_later(self.relay.delay, self.relay.send_back, data, self.client)


class _Relay(asyncio.DatagramProtocol):
    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        self.upstream, self.delay = upstream, delay
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[tuple[str, int], asyncio.Future[_Upstream]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def send_back(self, data: bytes, client: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(data, client)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = (str(addr[0]), int(addr[1]))
        future = self.clients.get(client)
        if future is None:
            future = asyncio.ensure_future(self._connect(client))
            self.clients[client] = future
        self.loop.call_later(self.delay, self._forward, future, data)

    async def _connect(self, client: tuple[str, int]) -> _Upstream:
        _, protocol = await self.loop.create_datagram_endpoint(
            lambda: _Upstream(self, client), sock=_socket(connect=self.upstream)
        )
        return protocol

    def _forward(self, future: "asyncio.Future[_Upstream]", data: bytes) -> None:
        if future.done():
            upstream = future.result()
            if upstream.transport is not None:
                upstream.last_used = time.monotonic()
                upstream.transport.sendto(data)
        else:
            future.add_done_callback(lambda f: self._forward(f, data))

    async def reap(self) -> None:
        """Close upstream sockets of clients gone quiet (one-socket-per-query clients)."""
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for client, future in list(self.clients.items()):
                if future.done() and now - future.result().last_used > 10:
                    transport = future.result().transport
                    if transport is not None:
                        transport.close()
                    del self.clients[client]


async def _serve(
    listen: tuple[str, int],
    upstream: tuple[str, int],
    delay: float,
    ready: multiprocessing.synchronize.Event,
) -> None:
    loop = asyncio.get_running_loop()
    _, relay = await loop.create_datagram_endpoint(
        lambda: _Relay(upstream, delay), sock=_socket(bind=listen)
    )
    ready.set()
    await relay.reap()


def serve(
    listen: tuple[str, int],
    upstream: tuple[str, int],
    delay: float,
    ready: multiprocessing.synchronize.Event,
) -> None:
    asyncio.run(_serve(listen, upstream, delay, ready))


def start(
    listen: tuple[str, int], upstream: tuple[str, int], delay: float = 0.010
) -> multiprocessing.process.BaseProcess:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    process = ctx.Process(target=serve, args=(listen, upstream, delay, ready), daemon=True)
    process.start()
    if not ready.wait(20):
        process.terminate()
        raise RuntimeError("the UDP relay did not start")
    return process
