"""The embedded Postgres stops with the last process that uses it, however the others exited.

Real `penguinmails` processes on a scratch data dir with no PENGUINMAILS_DATABASE_URL, killed
uncleanly (SIGKILL, SIGHUP); afterwards no postgres may be left running for that pgdata."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from database.embedded import live_users, start_time
from tests.support.environment import child_env
from tests.support.serving import cli, serving

TIMEOUT = 30.0


def _postgres_for(pgdata: Path) -> list[psutil.Process]:
    """The postmaster(s) running on `pgdata`: named postgres, with the path on the command line."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(pgdata) in part for part in cmdline):
            found.append(proc)
    return found


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return False
    return start_time(pid) is not None


def _running(pgdata: Path) -> bool:
    return _postmaster_alive(pgdata) or bool(_postgres_for(pgdata))


def _stopped_within(pgdata: Path, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while _running(pgdata):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _exited_within(proc: psutil.Process, timeout: float = TIMEOUT) -> bool:
    """Without reaping it: `serving` owns the Popen and reaps it when its block ends."""
    deadline = time.monotonic() + timeout
    while start_time(proc.pid) is not None:  # a zombie counts as exited
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def data_dir(embedded_dir: Path) -> Iterator[Path]:
    try:
        yield embedded_dir
    finally:  # whatever the test did, leave no postgres behind on the scratch pgdata
        leftovers = _postgres_for(embedded_dir / "pgdata")
        for proc in leftovers:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for proc in alive:
            proc.kill()


def _env(data_dir: Path) -> dict[str, str]:
    env = child_env(data_dir=data_dir)  # child_env drops every PENGUINMAILS_*
    assert "PENGUINMAILS_DATABASE_URL" not in env
    return env


@contextmanager
def _serve(env: dict[str, str]) -> Iterator[psutil.Process]:
    """`penguinmails serve`, ready; yields the process so the test can signal it."""
    with serving(env) as base:
        port = base.rsplit(":", 1)[1]
        (proc,) = [
            child
            for child in psutil.Process().children()
            if "serve" in child.cmdline() and port in child.cmdline()
        ]
        yield proc


def _serve_and_stop_cleanly(env: dict[str, str]) -> None:
    with serving(env):
        pass  # serving() sends SIGTERM and waits for the exit


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP], ids=["SIGKILL", "SIGHUP"])
def test_serve_killed_uncleanly_then_a_clean_run_leaves_no_postgres(
    data_dir: Path, sig: signal.Signals
) -> None:
    env, pgdata = _env(data_dir), data_dir / "pgdata"
    with _serve(env) as proc:
        proc.send_signal(sig)
        assert _exited_within(proc), f"serve did not exit on {sig.name}"
    if sig == signal.SIGHUP:  # a hangup (closed terminal) runs the exit handlers
        assert _stopped_within(pgdata), "the embedded Postgres outlived serve's SIGHUP"
    else:  # nothing runs on SIGKILL: the server stays, with a dead pid among its users
        assert _running(pgdata)
    _serve_and_stop_cleanly(env)
    assert _stopped_within(pgdata), "the embedded Postgres outlived the clean run"


@pytest.mark.slow
def test_a_cli_command_after_a_killed_serve_stops_the_server(data_dir: Path) -> None:
    env, pgdata = _env(data_dir), data_dir / "pgdata"
    with _serve(env) as proc:
        proc.kill()
        assert _exited_within(proc)
    assert _running(pgdata)
    done = cli(env, "tenant", "list")
    assert done.returncode == 0, done.stderr
    assert _stopped_within(pgdata), "the embedded Postgres outlived `tenant list`"


@pytest.mark.slow
def test_the_last_user_stops_the_server_when_another_was_killed(data_dir: Path) -> None:
    env, pgdata = _env(data_dir), data_dir / "pgdata"
    with serving(env):
        with _serve(env) as victim:
            victim.kill()
            assert _exited_within(victim)
        assert _running(pgdata), "a surviving serve still uses the server"
    assert _stopped_within(pgdata), "the embedded Postgres outlived its last user"


def test_live_users_drops_dead_zombie_and_reused_pids() -> None:
    me = start_time(psutil.Process().pid)
    assert me is not None
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    zombie = subprocess.Popen([sys.executable, "-c", ""])
    try:
        deadline = time.monotonic() + TIMEOUT
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        users = {psutil.Process().pid: me, dead.pid: me, zombie.pid: me}
        assert live_users(users) == {psutil.Process().pid: me}
        # The same pid, started at another time: the pid was reused by a different process.
        assert live_users({psutil.Process().pid: me - 3600}) == {}
    finally:
        zombie.wait(timeout=TIMEOUT)
