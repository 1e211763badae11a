"""The sandbox engine's stack lock: one run of a stack at a time, as Pulumi's backends allow,
held across processes in Postgres and dropped with the process that held it."""

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import Engine, text

from automation.errors import StackLocked
from automation.sandbox.engine import SandboxEngine
from automation.sandbox.state import MemoryStore, PostgresStore, StateStore
from stacks.config import FleetConfig
from tests.support.environment import child_env
from tests.support.stack_fleet import fleet_config, mailbox, server


def config() -> FleetConfig:
    return fleet_config(servers=(server("mx1"),), mailboxes=(mailbox("a@example.com", "mx1"),))


@pytest.mark.parametrize("make", [PostgresStore, MemoryStore], ids=["postgres", "memory"])
def test_a_second_run_of_a_locked_stack_is_refused_at_once_and_another_stack_is_not(
    committed: Engine, make: type[StateStore]
) -> None:
    store = make()
    sandbox = SandboxEngine(store, digest_key=b"k")
    with store.locked("ws-lock"):
        for run in (sandbox.up, sandbox.refresh, sandbox.destroy):
            started = time.monotonic()
            with pytest.raises(StackLocked) as err:
                run("ws-lock", config())
            assert err.value.transient  # the queue retries it later
            assert err.value.details["held"]  # refused before it ran
            assert time.monotonic() - started < 2.0  # refused, not queued behind the holder
        assert sandbox.up("ws-other", config()).summary["create"] > 0
    # Released with the run: the stack runs again.
    assert sandbox.up("ws-lock", config()).summary["create"] > 0


def test_a_run_in_progress_holds_the_lock_until_it_ends(committed: Engine) -> None:
    store = PostgresStore()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.locked("ws-held"):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(StackLocked):
            SandboxEngine(PostgresStore(), digest_key=b"k").up("ws-held", config())
    finally:
        release.set()
        holder.join()
    with store.locked("ws-held"):  # ended: free again
        pass


def test_a_killed_holder_leaves_the_stack_unlocked(committed: Engine) -> None:
    """A worker SIGKILLed mid-run: its connection closes and Postgres drops its lock."""
    code = (
        "import sys, time\n"
        "from automation.sandbox.state import PostgresStore\n"
        "with PostgresStore().locked('ws-killed'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(database_url=str(committed.url.render_as_string(hide_password=False))),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(StackLocked), PostgresStore().locked("ws-killed"):
            pass
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with PostgresStore().locked("ws-killed"):
                break
        except StackLocked:
            assert time.monotonic() < deadline, "the dead holder's lock was never dropped"
            time.sleep(0.1)
    with committed.connect() as conn:  # and no lock of ours is left behind
        assert not conn.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c"),
            {"c": 0x504D534B},
        )
