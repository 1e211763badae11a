"""The probes' concurrency bound, held only while a step works.

A step takes a slot to start and gives it back when it ends or once it has run `FACTOR` times
longer than steps are taking right now, whichever comes first. "Right now" is the 90th
percentile of the last steps that ended on their own (a timeout says nothing about how busy we
are), never under `floor` nor over `ceiling` (the timeout): the percentile, because a dead
server's refused connects end at once and would pull an average down to nothing. So the slots
bound the steps that are working (connect, handshake, a prompt answer), and a step that much
slower than its peers is waiting on a slow or hung server, which it does on its own deadline
without holding anyone else's slot. Measured, not fixed: when the machine is busy every step is
slower, the hold grows with them, and no flood of new steps is let in exactly when they would
all miss their deadlines. A step's hold follows the estimate while it runs."""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

FACTOR = 3.0
_WINDOW = 256  # the last steps that ended
_EVERY = 16  # steps between two estimates (a sort of the window each)


class Slots:
    def __init__(self, size: int, *, floor: float, ceiling: float) -> None:
        self._semaphore = asyncio.Semaphore(size)
        self.floor, self.ceiling = floor, max(floor, ceiling)
        self.hold = floor  # until steps have ended: the least hold
        self._ended: deque[float] = deque(maxlen=_WINDOW)
        self._since = 0

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        await self._semaphore.acquire()
        loop = asyncio.get_running_loop()
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
            if left <= 0:
                release()
            else:  # the estimate grew since this step started
                timer = loop.call_later(left, due)

        timer = loop.call_later(self.hold, due)
        try:
            yield
        finally:
            timer.cancel()
            release()
        self._record(loop.time() - started)  # not reached when the step raised

    def _record(self, seconds: float) -> None:
        self._ended.append(seconds)
        self._since += 1
        if self._since >= _EVERY:
            self._since = 0
            p90 = sorted(self._ended)[int(len(self._ended) * 0.9)]
            self.hold = min(self.ceiling, max(self.floor, FACTOR * p90))
