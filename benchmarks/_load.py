"""A closed-loop HTTP/1.1 load client for the API benchmarks: `clients` keep-alive connections on
one asyncio loop, each sending its next request as soon as the previous answer is read. Raw
sockets rather than an HTTP library, so the client's own CPU stays small beside the servers' and
is the same for every server it drives."""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# (client index, request number) -> (method, path, JSON body or None)
Request = Callable[[int, int], tuple[str, str, object | None]]


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _client(
    port: int,
    index: int,
    token: str,
    make: Request,
    deadline: float,
    result: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    try:
        while time.monotonic() < deadline:
            method, path, body = make(index, n)
            n += 1
            payload = b"" if body is None else json.dumps(body).encode()
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n"
                + (f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n")
                + "\r\n"
            )
            started = time.perf_counter()
            writer.write(head.encode() + payload)
            headers = await reader.readuntil(b"\r\n\r\n")
            lines = headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = 0
            for line in lines[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            result.statuses[status] += 1
            result.requests += 1
    finally:
        writer.close()


def run_load(port: int, tokens: list[str], make: Request, seconds: float) -> LoadResult:
    """`len(tokens)` clients (client i sends tokens[i]) for `seconds`."""

    async def main() -> LoadResult:
        result = LoadResult(0, 0.0)
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(_client(port, i, t, make, deadline, result) for i, t in enumerate(tokens))
        )
        result.seconds = time.monotonic() - started
        return result

    return asyncio.run(main())
