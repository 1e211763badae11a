"""UDP transport for the resolver: one connected socket per nameserver carries every query in
flight, matched to its reply by id and question; TCP for a truncated answer. Queries are encoded
by hand (a fixed header, the question, an EDNS0 OPT record) because building a dnspython Message
per query costs as much as parsing the reply; replies are read by `maildns.wire`, which decodes
only what the checks use."""

import asyncio
import contextlib
import secrets
import socket
import struct
from typing import cast

from maildns.wire import Reply, WireError, parse

# EDNS0 with a 1232-byte payload (the DNS flag day 2020 value): DKIM keys fit without TCP.
EDNS_PAYLOAD = 1232
_HEADER = struct.pack("!HHHHH", 0x0100, 1, 0, 0, 1)  # RD; one question; one OPT record
_OPT = b"\x00" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, 0, 0)
# Hundreds of replies can land at once; the default buffer (~200 KB, a few hundred datagrams)
# drops them and each drop costs a timeout.
RECEIVE_BUFFER = 4 * 1024 * 1024


def encode_question(name: str, qtype: int) -> bytes | None:
    """The question section for `name` (plain LDH/underscore labels), or None if the name is
    not a valid domain name."""
    out = bytearray()
    if name and name != ".":
        for label in name.rstrip(".").split("."):
            try:
                raw = label.encode("ascii")
            except UnicodeEncodeError:
                return None
            if not 0 < len(raw) <= 63 or b"\\" in raw:
                return None
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        return None
    return bytes(out) + struct.pack("!HH", qtype, 1)


class _Ids:
    """Unpredictable 16-bit query ids (an off-path forger must guess them), drawn from the
    system's CSPRNG a few thousand at a time: one `os.urandom` call per query was a visible
    share of the sweep's CPU."""

    def __init__(self) -> None:
        self._pool = memoryview(b"")

    def next(self) -> int:
        if len(self._pool) < 2:
            self._pool = memoryview(secrets.token_bytes(8192))
        value = int.from_bytes(self._pool[:2], "big")
        self._pool = self._pool[2:]
        return value


class Channel(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[bytes, asyncio.Future[Reply]]] = {}
        self._ids = _Ids()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(data) < 12 or not data[2] & 0x80:  # too short, or not a response
            return
        entry = self.pending.get(int.from_bytes(data[:2], "big"))
        if entry is None:
            return
        question, future = entry
        if data[12 : 12 + len(question)].lower() != question or future.done():
            return
        try:
            future.set_result(parse(data, len(question), _qtype(question)))
        except WireError:
            return  # malformed: the query times out and is retried

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the waiting queries time out and are retried.
        pass

    async def ask(self, question: bytes, timeout: float) -> Reply:
        while True:
            qid = self._ids.next()
            if qid not in self.pending:
                break
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        self.pending[qid] = (question.lower(), future)
        # A bare timer rather than `asyncio.timeout`, whose context manager (and the task
        # cancellation it raises through) cost more per query than the reply's parse.
        timer = loop.call_later(timeout, _expire, future)
        try:
            assert self.transport is not None
            self.transport.sendto(_query(qid, question))
            return await future
        except asyncio.CancelledError:
            # Cancelled just as the timer failed the future: mark its TimeoutError retrieved.
            if future.done() and not future.cancelled():
                future.exception()
            raise
        finally:
            timer.cancel()
            self.pending.pop(qid, None)
            if not future.done():
                future.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_channel(server: tuple[str, int]) -> Channel:
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    sock.connect(server)
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(Channel, sock=sock)
    return protocol


def _expire(future: "asyncio.Future[Reply]") -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def _qtype(question: bytes) -> int:
    return int.from_bytes(question[-4:-2], "big")


def _query(qid: int, question: bytes) -> bytes:
    return qid.to_bytes(2, "big") + _HEADER + question + _OPT


async def ask_tcp(server: tuple[str, int], question: bytes, timeout: float) -> Reply:
    """One query over TCP (RFC 7766: two-byte length prefix), for an answer too big for UDP.
    Raises TimeoutError, OSError, asyncio.IncompleteReadError or WireError."""
    qid = secrets.randbits(16)
    message = _query(qid, question)
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            writer.write(len(message).to_bytes(2, "big") + message)
            await writer.drain()
            length = int.from_bytes(await reader.readexactly(2), "big")
            data = await reader.readexactly(length)
        finally:
            writer.close()
    if len(data) < 12 or int.from_bytes(data[:2], "big") != qid or not data[2] & 0x80:
        raise WireError("the TCP reply does not answer our query")
    if data[12 : 12 + len(question)].lower() != question.lower():
        raise WireError("the TCP reply is for another question")
    return parse(data, len(question), _qtype(question))
