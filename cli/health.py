"""`penguinmails health sweep`: the monitoring.health sweep once, beside `dns sweep`, for
operators and for trying alerts in sandbox workspaces without waiting for the schedule."""

import argparse
import dataclasses
import json
from typing import Any

from settings import get_settings


def _sweep(_: argparse.Namespace) -> int:
    from cli.processes import prepare
    from scheduler.jobs import monitoring_health

    prepare()
    report = monitoring_health.run(get_settings())
    print(json.dumps(dataclasses.asdict(report), default=str))
    # 0: the sweep ran (whatever it found: findings are results, not errors); 1: another sweep
    # held the lock, so nothing was checked; 3: some servers' results could not be recorded.
    if report.skipped:
        return 1
    return 3 if report.failed_servers else 0


def register(sub: Any) -> None:
    health = sub.add_parser("health", help="health checks of the fleet (needs the database)")
    hsub = health.add_subparsers(dest="health_command", metavar="SUBCOMMAND", required=True)
    p = hsub.add_parser(
        "sweep",
        help="run the monitoring.health sweep once and print its report as JSON",
        description="Run the monitoring.health sweep once: probe every live server (sandbox "
        "servers get simulated results), record results, raise and clear alerts, purge old "
        "history. Exit status: 0 the sweep ran, 1 another sweep was running (nothing checked), "
        "3 some servers' results could not be recorded (their ids are in failed_servers).",
    )
    p.set_defaults(handler=_sweep)
