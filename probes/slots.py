"""The probes' concurrency bound, held only while a step works.

A step takes a slot to start and gives it back when it ends or once it has run `FACTOR` times
longer than steps are taking right now, whichever comes first. "Right now" is the median of the
last steps that ended on their own (a timeout says nothing about how busy we are), never under
`floor` nor over `ceiling` (the timeout). The median, not a high percentile: a fifth of a fleet
may be slow (the benchmark's is), and a 90th percentile then measures those servers, not us,
and grows to the timeout, so every slow or hung step kept its slot to the end and the steps
behind them waited for nothing; the floor keeps a dead server's instant refusals from pulling
it down to nothing. So the slots bound the steps that are working (connect, handshake, a
prompt answer), and a step that much slower than its peers is waiting on a slow or hung
server, which it does on its own deadline without holding anyone else's slot.

Measured, not fixed, and only while the event loop keeps up: when the machine is busy every step
is slower and the hold grows with them, and while the loop runs late (`LAG_LIMIT`: its own
callbacks fire that much behind time, the process is short of CPU) no slot is given back early
at all, since what a step is waiting for then may be us, not its server, and a flood of new
steps would make every deadline harder to meet. A step's hold follows the estimate while it
runs.

Two queues wait for a slot: steps marked `first` are let in before the others (each queue in
arrival order). The runner marks the links of a server's longest chain (the HTTPS connection
and the requests that follow on it one at a time) and the blocklist lookups that many servers'
checks wait on: started first, their waits overlap the rest of the sweep instead of ending it."""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

FACTOR = 3.0
QUANTILE = 0.5  # of the last steps' durations: what a step takes "right now"
LAG_LIMIT = 0.05  # seconds the loop's own callbacks may run late before no slot goes early
_TICK = 0.05  # how often the loop's lateness is sampled
_WINDOW = 256  # the last steps that ended
_EVERY = 16  # steps between two estimates (a sort of the window each)


class _Gate:
    """A counting semaphore with two queues: a waiter marked `first` is let in before every
    waiter that is not, each queue in arrival order."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    async def acquire(self, first: bool) -> None:
        if self._free > 0 and not any(self._waiting):
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[0 if first else 1].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # let in just as it was cancelled: pass the slot on
            raise

    def release(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1


class Slots:
    def __init__(self, size: int, *, floor: float, ceiling: float) -> None:
        self._semaphore = _Gate(size)
        self._running = 0  # steps inside held(), slot given back early or not
        self.floor, self.ceiling = floor, max(floor, ceiling)
        self.hold = floor  # until steps have ended: the least hold
        self._ended: deque[float] = deque(maxlen=_WINDOW)
        self._since = 0
        self.lag = 0.0  # how late the loop ran, lately (seconds)
        self._ticking = False

    @asynccontextmanager
    async def held(self, *, first: bool = False) -> AsyncIterator[None]:
        """A slot for one step; `first` steps are let in before the others (the head and links
        of a server's longest chain, so its waits start early and the sweep's tail is short)."""
        await self._semaphore.acquire(first)
        loop = asyncio.get_running_loop()
        self._running += 1
        self._watch(loop)
        started = loop.time()
        holding = True
        timer: asyncio.TimerHandle | None = None

        def release() -> None:
            nonlocal holding
            if holding:
                holding = False
                self._semaphore.release()

        def due() -> None:
            nonlocal timer
            left = self.hold - (loop.time() - started)
            if left <= 0 and self.lag < LAG_LIMIT:
                release()
            else:  # the estimate grew since this step started, or the loop runs late
                timer = loop.call_later(max(left, self.hold / 2), due)

        timer = loop.call_later(self.hold, due)
        try:
            yield
        finally:
            self._running -= 1
            timer.cancel()
            release()
        self._record(loop.time() - started)  # not reached when the step raised

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sample how late a callback due every `_TICK` runs (the decay keeps one late tick
        from counting for long); stops once no step holds a slot or waits for one."""
        if self._ticking:
            return
        self._ticking = True
        due = loop.time() + _TICK

        def tick() -> None:
            nonlocal due
            late = max(0.0, loop.time() - due)
            self.lag = max(late, self.lag * 0.8)
            if not self._running:
                self._ticking = False
                return
            due = loop.time() + _TICK
            loop.call_at(due, tick)

        loop.call_at(due, tick)

    def _record(self, seconds: float) -> None:
        self._ended.append(seconds)
        self._since += 1
        if self._since >= _EVERY:
            self._since = 0
            typical = sorted(self._ended)[int(len(self._ended) * QUANTILE)]
            self.hold = min(self.ceiling, max(self.floor, FACTOR * typical))
