"""hosts: which machines run workers against this database, and the Pulumi backend check."""

import argparse
import json
from datetime import timedelta
from typing import Any

from cli.processes import prepare
from database.session import session_scope
from domain.hosts import backends
from domain.hosts import service as hosts
from kit.time import utcnow
from settings import get_settings


def _hosts(args: argparse.Namespace) -> int:
    """Exit 0 when live stacks can run safely everywhere, 1 with the finding otherwise."""
    prepare()
    settings = get_settings()
    backend = backends.resolve(settings)
    now = utcnow()
    with session_scope() as session:
        rows = hosts.registered(session, since=now - timedelta(seconds=settings.host_stale_seconds))
        workers: list[dict[str, Any]] = [
            {
                "host": r.host,
                "pid": r.pid,
                "started_at": r.started_at.isoformat(),
                "last_seen_at": r.last_seen_at.isoformat(),
                "pulumi_backend": r.pulumi_backend,
                "backend_local": r.backend_local,
            }
            for r in rows
        ]
        finding = backends.deployment_finding(session, settings, now=now) or backends.check(
            session, settings, now=now
        )
    report = {
        "this_host": backends.host_name(settings),
        "pulumi_backend": backend.display,  # never the password
        "workers": workers,
        "finding": finding.as_dict() if finding else None,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"this host: {report['this_host']}, Pulumi state: {report['pulumi_backend']}")
        for w in workers:
            local = " (machine-local)" if w["backend_local"] else ""
            print(
                f"  {w['host']} pid {w['pid']}: {w['pulumi_backend']}{local},"
                f" last seen {w['last_seen_at']}"
            )
        print(finding.message if finding else "ok: live stacks share their Pulumi state")
    return 1 if finding else 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "hosts",
        help="worker hosts registered against this database and whether live stacks share state",
    )
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(handler=_hosts)
