"""`probe_many` across processes: the targets dealt round-robin into shards (every shard sees
the same mix of healthy, slow and dead servers), each probed by a process of its own with its
own event loop, so a sweep uses every core and not one (TLS and SSH handshakes are CPU work).

Each server's results come back to the caller's process as soon as that server is done
(`on_result`, called in the caller's thread), for its history writer: the children never touch
the database. A child starts with `spawn` (a fresh interpreter: the caller has threads and
database connections a fork would copy) and is given its shard and the probe settings over its
pipe, secrets included, never on a command line. The concurrency bound is shared out between
the children. A child that dies leaves its unfinished servers to the caller, probed in-process
afterwards, so every server still gets its results."""

import logging
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from multiprocessing.connection import Connection, wait

from kit.aio import run_sweep
from probes.runner import probe_many
from probes.types import CheckResult, ProbeConfig, Target

log = logging.getLogger(__name__)
MIN_PER_SHARD = 100  # fewer servers than this per process: one process (a child costs ~1 s)


def shards(count: int, processes: int, min_per_shard: int = MIN_PER_SHARD) -> int:
    """How many processes `count` servers are probed by."""
    return max(1, min(processes, count // max(1, min_per_shard)))


def _child(conn: Connection) -> None:
    targets, config, now = conn.recv()

    def sent(key: str, results: list[CheckResult]) -> None:
        conn.send((key, results))

    try:
        run_sweep(probe_many(targets, config, now, sent))
    finally:
        conn.send(None)
        conn.close()


def probe_sharded(
    targets: Sequence[Target],
    config: ProbeConfig,
    now: datetime,
    on_result: Callable[[str, list[CheckResult]], None],
    processes: int,
    *,
    min_per_shard: int = MIN_PER_SHARD,
) -> None:
    """Every target probed, `on_result(key, results)` once per target as it finishes."""
    n = shards(len(targets), processes, min_per_shard)
    if n == 1:
        run_sweep(probe_many(targets, config, now, on_result))
        return
    ctx = mp.get_context("spawn")
    # A copy without the cached SSL contexts (not picklable; each child builds its own).
    share = replace(config, concurrency=max(1, config.concurrency // n))
    children: dict[Connection, mp.process.BaseProcess] = {}
    pending = {t.key: t for t in targets}
    try:
        for i in range(n):
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(target=_child, args=(child_end,), name=f"health-probe-{i}")
            process.daemon = True
            process.start()
            child_end.close()
            parent_end.send((list(targets[i::n]), share, now))
            children[parent_end] = process
        open_ends = list(children)
        while open_ends:
            for ready in wait(open_ends):
                assert isinstance(ready, Connection)
                try:
                    message = ready.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:
                    open_ends.remove(ready)
                    continue
                key, results = message
                if pending.pop(key, None) is not None:
                    on_result(key, results)
    finally:
        for conn, child in children.items():
            conn.close()
            child.join(5)
            if child.is_alive():
                child.kill()
                child.join()
    if pending:
        log.error(
            "health probes: a probe process ended early; %d servers probed here", len(pending)
        )
        run_sweep(probe_many(list(pending.values()), config, now, on_result))
