"""Running async work (DNS lookups, webhook POSTs, the sweeps' probes) from synchronous code."""

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion, also when this thread already has an event loop (then in a
    thread of its own)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not built for this platform: the standard loop
        return None
    return uvloop.new_event_loop


def run_sweep(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop when it is installed, for the sweeps' event loops (the health
    probes, the DNS checks): thousands of connections, handshakes and datagrams a process, where
    the standard loop's own Python (its selector, transports, TLS protocol, a 256 KiB buffer
    allocated per TLS connection) was a third of the probe processes' CPU."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)
