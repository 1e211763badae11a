"""CPython's cyclic garbage collector held off while a stack program is evaluated.

Measured (benchmarks/stacks.py, issue 16): evaluating the fleet program creates Outputs, futures
and tasks by the hundred thousand, all alive until the program ends, and half the evaluation was
the collector walking that growing heap again and again, finding nothing to free; that is why the
cost per resource rose with the fleet's size. So the collector is off while a program is
evaluated, and collects once after: the young generation only, which holds exactly what was
allocated while it was off (nothing was promoted meanwhile), so the run's cyclic garbage is freed
at a cost proportional to the run, not to the whole process heap (a full collection took
0.3-0.75 s after a 100-server run).

The collector is one per process and the live engine can evaluate programs of different stacks
in parallel threads, so holds are counted: the first hold turns it off, the last release
restores what it was (if it was already off, it stays off and nothing is collected), whatever
exception ends a program. Every inline program (sandbox and live) is evaluated inside `paused`.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_holds = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _holds, _was_enabled
    with _lock:
        if _holds == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holds += 1
    try:
        yield
    finally:
        with _lock:
            _holds -= 1
            collect = _holds == 0 and _was_enabled
            if collect:
                gc.enable()
        if collect:
            gc.collect(0)


def held(program: Callable[[], T]) -> Callable[[], T]:
    """`program`, evaluated with the collector paused (for inline Automation API programs)."""

    def run() -> T:
        with paused():
            return program()

    return run
