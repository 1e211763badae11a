"""Sandbox `up` cost as the fleet grows, beside a bare Pulumi program of the same shape.

    python -m benchmarks stacks [--sizes 10,100,500] [--mailboxes 10] [--repeat 3]

Per fleet size (servers x mailboxes per server), on the in-memory state store so the figures are
the program's evaluation under the mock runtime, repetitions interleaved across sizes:

    create     the first `up` of a new stack (everything created)
    changed    an `up` after one mailbox's quota changed (everything compared, one update)
    unchanged  the same config again (skipped when the engine skips unchanged stacks)
    bare       benchmarks/_bare_stack.py: the same resources as plain pulumi resources with no
               logic of ours, under the same mock runtime (with its collector pause)
    bare-gc    the same bare program with the collector left on, as a bare program runs

Printed: min / median of each, ms per resource of `changed`, changed / bare and unchanged as a
percentage of changed (ratios from the same run), then the ms-per-resource spread across sizes.
"""

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from automation.sandbox.engine import SandboxEngine
from benchmarks._bare_stack import run_bare
from stacks.config import FleetConfig, MailboxSpec, ServerSpec
from tests.support.stack_fleet import MAILBOX_PASSWORD, domain, fleet_config


def fleet(servers: int, mailboxes: int) -> FleetConfig:
    return fleet_config(
        servers=tuple(
            ServerSpec(
                name=f"mx{i}",
                provider="hetzner",
                size="starter",
                region="eu-central",
                hostname=f"mx{i}.mail.example.net",
            )
            for i in range(servers)
        ),
        domains=(domain("example.com"),),
        mailboxes=tuple(
            MailboxSpec(address=f"u{i}-{j}@example.com", server=f"mx{i}", password=MAILBOX_PASSWORD)
            for i in range(servers)
            for j in range(mailboxes)
        ),
    )


Timing = tuple[float, float]  # (process CPU seconds, all threads; wall seconds)


def _timed(run: Callable[[], object]) -> tuple[Timing, object]:
    cpu, wall = time.process_time(), time.perf_counter()
    value = run()
    return (time.process_time() - cpu, time.perf_counter() - wall), value


def _ours(config: FleetConfig, rep: int) -> tuple[dict[str, Timing], int]:
    # The documentation ranges hold 762 addresses; RFC 2544's benchmarking /15 holds plenty.
    engine = SandboxEngine.in_memory(ipv4_ranges=["198.18.0.0/15"], ipv6_range="2001:db8::/32")
    created, first = _timed(lambda: engine.up("bench", config))
    first_mailbox = replace(config.mailboxes[0], quota_mb=config.mailboxes[0].quota_mb + 1 + rep)
    changed_config = replace(config, mailboxes=(first_mailbox, *config.mailboxes[1:]))
    changed, second = _timed(lambda: engine.up("bench", changed_config))
    unchanged, third = _timed(lambda: engine.up("bench", changed_config))
    assert len(second.changes) == 1, second.changes  # type: ignore[attr-defined]
    assert not third.changes, "an unchanged config must report no changes"  # type: ignore[attr-defined]
    resources = first.summary["create"]  # type: ignore[attr-defined]
    return {"create": created, "changed": changed, "unchanged": unchanged}, resources


def _bare(servers: int, mailboxes: int, *, collector_paused: bool = True) -> tuple[Timing, int]:
    timing, count = _timed(lambda: run_bare(servers, mailboxes, collector_paused=collector_paused))
    return timing, int(count)  # type: ignore[call-overload]


def _ratio(ours: list[float], base: list[float], *, percent: bool = False) -> str:
    # Per repetition: each pair ran back to back, under the same load.
    ratios = [a / b for a, b in zip(ours, base, strict=True)]
    if percent:
        return f"{100 * min(ratios):.1f}% / {100 * statistics.median(ratios):.1f}%"
    return f"{min(ratios):.2f}x / {statistics.median(ratios):.2f}x"


def _fmt(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f}"


def _report(
    clock: str, times: dict[int, dict[str, list[float]]], resources: dict[int, int], boxes: int
) -> None:
    print(f"-- {clock}")
    per_resource: dict[int, float] = {}
    for size, t in times.items():
        n = resources[size]
        per_resource[size] = 1000 * statistics.median(t["changed"]) / n
        print(
            f"{size} servers x {boxes} mailboxes, {n} resources: "
            f"changed/bare {_ratio(t['changed'], t['bare'])}, "
            f"changed/bare-gc {_ratio(t['changed'], t['bare-gc'])}, "
            f"unchanged/changed {_ratio(t['unchanged'], t['changed'], percent=True)}, "
            f"changed {1000 * min(t['changed']) / n:.2f} / {per_resource[size]:.2f} ms/resource"
        )
        print("    seconds: " + ", ".join(f"{k} {_fmt(v)}" for k, v in t.items()))
    if len(times) > 1:
        low, high = per_resource[min(times)], per_resource[max(times)]
        print(
            f"ms/resource of changed (median), {max(times)} vs {min(times)} servers: "
            f"{high / low:.2f}x"
        )


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks stacks")
    parser.add_argument("--sizes", default="10,100,500", help="fleet sizes (servers)")
    parser.add_argument("--mailboxes", type=int, default=10, help="mailboxes per server")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    configs = {size: fleet(size, args.mailboxes) for size in sizes}
    keys = ("create", "changed", "unchanged", "bare", "bare-gc")
    times: dict[int, dict[str, list[Timing]]] = {s: {k: [] for k in keys} for s in sizes}
    resources: dict[int, int] = {}
    for rep in range(args.repeat):
        for size in sizes:
            # Alternate which goes first, so neither always meets a warmer (or busier) machine.
            bare_first = rep % 2 == 1
            if bare_first:
                times[size]["bare"].append(_bare(size, args.mailboxes)[0])
            ours, resources[size] = _ours(configs[size], rep)
            for key, value in ours.items():
                times[size][key].append(value)
            if not bare_first:
                elapsed, count = _bare(size, args.mailboxes)
                assert count == resources[size], (count, resources[size])
                times[size]["bare"].append(elapsed)
            times[size]["bare-gc"].append(_bare(size, args.mailboxes, collector_paused=False)[0])
    print(f"{args.repeat} interleaved repetitions; ratios and seconds as min / median")
    for index, clock in enumerate(("CPU time of this process (all threads)", "wall clock")):
        _report(
            clock,
            {s: {k: [v[index] for v in t] for k, t in times[s].items()} for s in sizes},
            resources,
            args.mailboxes,
        )
    return 0
