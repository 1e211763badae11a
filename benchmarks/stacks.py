"""Sandbox evaluation time as the fleet grows.

`python -m benchmarks stacks [--sizes 10,100,500] [--mailboxes 10]`: for each fleet size, the
first `up` (everything created) and a second `up` of the unchanged config (everything compared),
on the in-memory state store so the figures are the program's evaluation under the mock runtime.
"""

import argparse
import time
from collections.abc import Sequence

from automation.sandbox.engine import SandboxEngine
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


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks stacks")
    parser.add_argument("--sizes", default="10,100,500", help="fleet sizes (servers)")
    parser.add_argument("--mailboxes", type=int, default=10, help="mailboxes per server")
    args = parser.parse_args(argv)
    print(f"{'servers':>8} {'mailboxes':>10} {'resources':>10} {'first up s':>11} "
          f"{'unchanged s':>12} {'ms/resource':>12}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        config = fleet(size, args.mailboxes)
        # The documentation ranges hold 762 addresses; RFC 2544's benchmarking /15 holds plenty.
        engine = SandboxEngine.in_memory(ipv4_ranges=["198.18.0.0/15"], ipv6_range="2001:db8::/32")
        started = time.perf_counter()
        first = engine.up("bench", config)
        created = time.perf_counter() - started
        started = time.perf_counter()
        second = engine.up("bench", config)
        unchanged = time.perf_counter() - started
        assert not second.changes, "an unchanged config must report no changes"
        resources = first.summary["create"]
        print(
            f"{size:>8} {size * args.mailboxes:>10} {resources:>10} {created:>11.2f} "
            f"{unchanged:>12.2f} {1000 * unchanged / resources:>12.2f}"
        )
    return 0
