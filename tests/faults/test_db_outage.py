"""A database outage is a 503 `database_unavailable` with Retry-After, logged once, and the API
recovers by itself when the database is back.

Everything runs against a scratch Postgres of the test's own (tests/support/postgres.py), never
the machine's shared server: real `penguinmails api`/`serve` processes while it is stopped,
started and restarted, and the real exceptions Postgres raises, classified by `api.errors`."""

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, pool, text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.app import create_app
from api.errors import database_error
from database.outage import classify
from kit.errors import DatabaseUnavailable, TransactionConflict
from tests.support.environment import child_env
from tests.support.ports import free_port
from tests.support.postgres import ScratchPostgres, postgres_bin_dir
from tests.support.serving import BIN, cli, create_tenant

TIMEOUT = 30.0
RETRY_AFTER = "3"
T = TypeVar("T")


@pytest.fixture
def pg() -> Iterator[ScratchPostgres]:
    if postgres_bin_dir() is None:
        pytest.skip("no Postgres binaries (initdb, pg_ctl): apt-get install postgresql")
    server = ScratchPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def _until(probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def _running(env: dict[str, str], command: str, log: Path) -> Iterator[httpx.Client]:
    """`penguinmails <command>` on a free port, its output in `log`, stopped on the way out."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN), command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            def ready() -> bool | None:
                assert proc.poll() is None, f"{command} exited:\n{log.read_text()}"
                try:
                    return True if http.get("/readyz").status_code == 200 else None
                except httpx.HTTPError:
                    return None

            _until(ready, f"{command} to become ready", timeout=60)
            yield http
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def _env(pg: ScratchPostgres, tmp_path: Path, **fields: object) -> dict[str, str]:
    env = child_env(
        database_url=pg.url,
        secret_key="outage-test-secret-key",
        data_dir=tmp_path / "data",
        database_retry_after_seconds=RETRY_AFTER,
        **fields,
    )
    done = cli(env, "migrate")
    assert done.returncode == 0, done.stderr
    return env


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == RETRY_AFTER
    error = r.json()["error"]
    assert set(r.json()) == {"error"}
    assert set(error) == {"code", "message", "field", "details"}
    assert error["code"] == "database_unavailable" and error["field"] is None, error
    assert "127.0.0.1" not in error["message"]  # the reason goes to the log, not to clients


def _count(log: Path, needle: str) -> int:
    return sum(needle in line for line in log.read_text().splitlines())


@pytest.mark.slow
def test_api_answers_503_while_the_database_is_down_and_recovers_by_itself(
    pg: ScratchPostgres, tmp_path: Path
) -> None:
    env = _env(pg, tmp_path)
    key = create_tenant(env, "outage")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "api.log"
    with _running(env, "api", log) as http:
        assert http.post("/api/v1/workspaces", json={"name": "before"}, headers=auth).is_success

        pg.stop()
        for _ in range(5):
            _assert_unavailable(http.get("/api/v1/workspaces", headers=auth))
            _assert_unavailable(http.post("/api/v1/workspaces", json={"name": "x"}, headers=auth))
            _assert_unavailable(http.get("/readyz"))
            assert http.get("/healthz").json() == {"status": "ok"}  # liveness needs no database
        output = log.read_text()
        assert 1 <= _count(log, "database unavailable") <= 2, output
        assert "Connection refused" in output  # the reason, once
        assert "Traceback" not in output and "unhandled error" not in output, output

        pg.start()

        def served() -> httpx.Response | None:
            r = http.get("/api/v1/workspaces", headers=auth)
            return r if r.status_code == 200 else None

        listed = _until(served, "the API to serve again")
        assert [w["name"] for w in listed.json()["items"]] == ["before"]
        assert http.post("/api/v1/workspaces", json={"name": "after"}, headers=auth).is_success
        assert http.get("/readyz").status_code == 200
        assert _count(log, "database available again") == 1, log.read_text()

        # A restart while the API runs: the pool's pre-ping replaces the dead connections.
        pg.restart()
        r = http.get("/api/v1/workspaces", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 2
        assert _count(log, "database unavailable") <= 2, log.read_text()  # none for the restart
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.mark.slow
def test_serve_answers_503_and_recovers_too(pg: ScratchPostgres, tmp_path: Path) -> None:
    env = _env(pg, tmp_path)
    key = create_tenant(env, "outage-serve")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    log = tmp_path / "serve.log"
    with _running(env, "serve", log) as http:
        pg.stop()
        for _ in range(3):
            _assert_unavailable(http.get("/api/v1/workspaces", headers=auth))
        # The scheduler's jobs and workers log their own failures; the API's are one line.
        assert 1 <= _count(log, "database.outage: database unavailable") <= 2, log.read_text()
        assert "Exception in ASGI application" not in log.read_text()
        assert "unhandled error" not in log.read_text()
        pg.start()
        _until(
            lambda: (
                True if http.get("/api/v1/workspaces", headers=auth).status_code == 200 else None
            ),
            "serve to answer again",
        )


# What Postgres and psycopg actually raise, and what api.errors makes of it.


def _raised(fn: Callable[[], Any]) -> DBAPIError:
    try:
        fn()
    except DBAPIError as exc:
        return exc
    raise AssertionError("expected a database error")


@pytest.mark.slow
def test_outages_are_told_apart_from_other_database_errors(pg: ScratchPostgres) -> None:
    engine = create_engine(pg.url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            pg.stop()  # fast: "terminating connection due to administrator command"
            ended = _raised(lambda: conn.execute(text("SELECT 1")))
        assert "administrator command" in str(ended) and ended.connection_invalidated
        refused = _raised(engine.connect)
        assert "Connection refused" in str(refused) and not refused.connection_invalidated
        for exc in (ended, refused):
            assert classify(exc) == "outage", exc
            assert isinstance(database_error(exc), DatabaseUnavailable)
            assert exc.orig is not None
            assert isinstance(database_error(exc.orig), DatabaseUnavailable)  # raw psycopg too

        pg.start()
        # A smart shutdown waits for open sessions; meanwhile new connections are refused with
        # "the database system is shutting down".
        with engine.connect() as held:
            held.execute(text("SELECT 1"))
            stopping = threading.Thread(target=pg.stop, kwargs={"mode": "smart"})
            stopping.start()
            try:
                shutting = _until(
                    lambda: _connect_error(engine, "shutting down"),
                    "the smart shutdown to refuse connections",
                )
            finally:
                held.close()
                stopping.join(timeout=TIMEOUT)
        assert classify(shutting) == "outage"
        pg.start()

        with engine.connect() as conn:  # not outages: a bug, a constraint, a statement timeout
            zero = _raised(lambda: conn.execute(text("SELECT 1/0")))
            conn.rollback()
            conn.execute(text("SET statement_timeout = 50"))
            timeout = _raised(lambda: conn.execute(text("SELECT pg_sleep(5)")))
            conn.rollback()
        assert isinstance(timeout, OperationalError)  # psycopg's QueryCanceled, SQLSTATE 57014
        for exc in (zero, timeout):
            assert classify(exc) is None and database_error(exc) is None, exc
    finally:
        engine.dispose()


def _connect_error(engine: Any, words: str) -> DBAPIError | None:
    """The error a new connection gets, if it mentions `words`."""
    try:
        engine.connect().close()
    except DBAPIError as exc:
        return exc if words in str(exc) else None
    return None


@pytest.mark.slow
def test_deadlocks_and_serialization_failures_are_retryable_not_outages(
    pg: ScratchPostgres,
) -> None:
    engine = create_engine(pg.url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, n int)"))
            conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)"))

        # Deadlock: each holds one row and waits for the other's.
        errors: list[DBAPIError] = []
        a, b = engine.connect(), engine.connect()
        try:
            a.execute(text("UPDATE t SET n = n + 1 WHERE id = 1"))
            b.execute(text("UPDATE t SET n = n + 1 WHERE id = 2"))

            def cross(conn: Any, row: int) -> None:
                try:
                    conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :id"), {"id": row})
                except DBAPIError as exc:
                    errors.append(exc)
                    conn.rollback()  # releases its locks, so the other one proceeds

            other = threading.Thread(target=cross, args=(a, 2))
            other.start()
            cross(b, 1)
            other.join(timeout=TIMEOUT)
            assert not other.is_alive()
        finally:
            a.close()
            b.close()
        assert len(errors) == 1
        deadlock = errors[0]
        assert getattr(deadlock.orig, "sqlstate", None) == "40P01"

        # Serialization failure: a repeatable-read transaction updates a row changed since.
        with engine.connect() as first, engine.connect() as second:
            first.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            first.execute(text("SELECT n FROM t WHERE id = 1"))
            second.execute(text("UPDATE t SET n = 0 WHERE id = 1"))
            second.commit()
            serialization = _raised(lambda: first.execute(text("UPDATE t SET n = 5 WHERE id = 1")))
        assert getattr(serialization.orig, "sqlstate", None) == "40001"

        for exc in (deadlock, serialization):
            assert isinstance(exc, OperationalError)  # what made them look like outages
            assert classify(exc) == "conflict", exc
            assert isinstance(database_error(exc), TransactionConflict)
    finally:
        engine.dispose()


# In process, on the suite's database: errors that are not outages keep their old answers.


def test_other_database_errors_stay_500s_and_conflicts_are_503s(
    committed: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with committed.begin() as conn:
        conn.execute(text("CREATE TABLE fault_rows (id int PRIMARY KEY, n int)"))
        conn.execute(text("INSERT INTO fault_rows VALUES (1, 0)"))

    def bug() -> None:
        with committed.connect() as conn:
            conn.execute(text("SELECT 1/0"))

    def conflict() -> None:  # a real serialization failure (no retrying route class here)
        with committed.connect() as first, committed.connect() as second:
            first.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            first.execute(text("SELECT n FROM fault_rows WHERE id = 1"))
            second.execute(text("UPDATE fault_rows SET n = n + 1 WHERE id = 1"))
            second.commit()
            first.execute(text("UPDATE fault_rows SET n = 5 WHERE id = 1"))

    app = create_app()
    app.add_api_route("/bug", bug)
    app.add_api_route("/conflict", conflict)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/bug")
            assert r.status_code == 500
            assert r.json()["error"]["code"] == "internal_error"
            r = client.get("/conflict")
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "transaction_conflict"
    finally:
        with committed.begin() as conn:
            conn.execute(text("DROP TABLE fault_rows"))
    unhandled = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert len(unhandled) == 1 and unhandled[0].exc_info is not None  # the bug, with traceback
    assert not [rec for rec in caplog.records if "database unavailable" in rec.getMessage()]


@pytest.mark.slow
def test_a_database_restart_mid_provisioning_loses_nothing(
    pg: ScratchPostgres, tmp_path: Path
) -> None:
    """`serve` (API and workers) provisions sandbox inboxes whose runs take a while; the
    database is restarted while runs are in flight, then stopped for a few seconds. Runs that
    were mid-flight record their results once the database is back (or are recovered when
    their lease lapses), and every inbox is provisioned with nothing left queued or running."""
    env = _env(
        pg,
        tmp_path,
        poll_interval_seconds=0.05,
        coalesce_seconds=0.1,
        lease_seconds=3,
        retry_backoff_seconds=0.2,
        sandbox_latency_seconds=1.5,
        inboxes_per_server=2,
        dns_nameservers="127.0.0.1:9",
    )
    key = create_tenant(env, "restart")["api_key"]
    log = tmp_path / "serve.log"
    with _running(env, "serve", log) as http:
        http.headers["Authorization"] = f"Bearer {key}"
        workspaces = [
            http.post("/api/v1/workspaces", json={"name": f"r{i}", "sandbox": True}).json()["id"]
            for i in range(2)
        ]
        created = []
        for n in range(8):
            r = http.post(
                f"/api/v1/workspaces/{workspaces[n % 2]}/inboxes",
                json={
                    "email_address": f"u{n}@restart{n % 2}.example.com",
                    "display_name": f"u{n}",
                    "vps_provider": "hetzner",
                    "vps_size": "starter",
                },
            )
            assert r.status_code == 202, r.text
            created.append(r.json()["id"])
        time.sleep(0.8)  # runs are under way (each takes 1.5 s of simulated provider time)
        pg.restart()
        pg.stop()
        _assert_unavailable(_until(lambda: _unavailable(http, workspaces[0]), "a 503"))
        time.sleep(2)
        pg.start()

        def provisioned() -> bool | None:
            try:
                states = [http.get(f"/api/v1/inboxes/{i}").json()["status"] for i in created]
                ops = [
                    op["status"]
                    for ws in workspaces
                    for op in http.get(f"/api/v1/workspaces/{ws}/operations").json()["items"]
                ]
            except (httpx.HTTPError, KeyError):
                return None
            settled = all(s == "dns_pending" for s in states)
            idle = not any(s in ("queued", "running") for s in ops)
            return True if settled and idle else None

        _until(provisioned, "every inbox provisioned after the restart", timeout=120)
    assert "Traceback" not in log.read_text()


def _unavailable(http: httpx.Client, workspace_id: str) -> httpx.Response | None:
    try:
        r = http.get(f"/api/v1/workspaces/{workspace_id}")
    except httpx.HTTPError:
        return None
    return r if r.status_code == 503 else None
