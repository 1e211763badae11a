"""serve, api, worker, migrate: the long-running processes and the schema."""

import argparse
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

from database import migrate as migrations
from database.session import database_url
from kit.secret_key import resolve_secret_key
from settings import get_settings

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("penguinmails")


def prepare() -> None:
    """Every command that touches the database: check the key, bring the schema up to date."""
    settings = get_settings()
    resolve_secret_key(
        settings
    )  # fail fast (or generate the embedded default's key) before serving
    migrations.upgrade(database_url(settings))


def _serve_http(args: argparse.Namespace, *, run_scheduler: bool) -> int:
    import uvicorn

    from cli.web import create_app

    prepare()
    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = getattr(args, "workers", 1)
    log.info("serving on http://%s:%s (console at /console, docs at /docs)", host, port)
    if workers > 1:
        # Separate processes: uvicorn imports the app factory in each of them.
        uvicorn.run(
            "cli.web:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
    else:
        from scheduler.runner import Runner

        app = create_app(background=(lambda: Runner(settings)) if run_scheduler else None)
        _run_until_signalled(
            uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        )
    return 0


def _run_until_signalled(server: "uvicorn.Server") -> None:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM only: a hangup (a closed terminal) gets
    the same shutdown here, then exits through cli.main's handler so exit handlers run (they
    stop the embedded Postgres)."""
    hangups: list[int] = []

    def hangup(signum: int, frame: FrameType | None) -> None:
        hangups.append(signum)
        server.should_exit = True

    previous = signal.signal(signal.SIGHUP, hangup)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGHUP, previous)
    if hangups:
        signal.raise_signal(signal.SIGHUP)
    if not server.started:  # as uvicorn.run does: a port in use, a failed startup
        from uvicorn.config import STARTUP_FAILURE

        raise SystemExit(STARTUP_FAILURE)


def _serve(args: argparse.Namespace) -> int:
    return _serve_http(args, run_scheduler=True)


def _api(args: argparse.Namespace) -> int:
    return _serve_http(args, run_scheduler=False)


def _worker(_: argparse.Namespace) -> int:
    from scheduler.runner import Runner

    prepare()
    runner = Runner(get_settings())
    runner.start()
    log.info("worker running; Ctrl-C or SIGTERM stops it")
    try:
        runner.wait()
    finally:  # Ctrl-C, or SIGTERM turned into SystemExit by cli.main
        runner.stop()
    return 0


def _migrate(_: argparse.Namespace) -> int:
    prepare()
    print("database is at the latest schema")
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return number


def register(sub: Any) -> None:
    for name, handler, help_text in (
        ("serve", _serve, "migrate, then run the API and the scheduler in one process"),
        ("api", _api, "run only the HTTP API (no scheduler, no workers)"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--host", help="listen address (default PENGUINMAILS_HOST)")
        p.add_argument("--port", type=int, help="listen port (default PENGUINMAILS_PORT)")
        p.set_defaults(handler=handler)
        if name == "api":
            p.add_argument(
                "--workers", type=_positive, default=1, help="API processes on one port (default 1)"
            )
    p = sub.add_parser("worker", help="run the scheduler and operation workers without the API")
    p.set_defaults(handler=_worker)
    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.set_defaults(handler=_migrate)
