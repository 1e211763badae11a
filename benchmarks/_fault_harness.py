"""Fault injection against real processes on one Postgres, shared by `tests/faults/` (small,
bounded) and `python -m benchmarks faults` (larger): an API process, worker processes that
journal every stack run, random SIGKILLs, then an audit of what the faults left behind.

    python -m benchmarks.__fault_harness worker --journal FILE [--threads N]

runs the real `scheduler.workers.OperationWorkers` with each workspace's own engine wrapped so
that every run appends `{"stack", "pid", "kind", "event": "start"|"end", "t"}` to FILE (small
O_APPEND writes are atomic, so several processes share one journal). A run of a killed worker
ends at its kill; two runs of one stack overlapping in time is a broken promise."""

import argparse
import inspect
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

BIN = Path(sys.executable).parent / "penguinmails"
ROOT = Path(__file__).resolve().parent.parent

# Child processes run the code of the tree this file is in (ROOT), not whatever the venv maps:
# the editable install points the `penguinmails` console script at the tree it was installed
# from, so measuring another checkout (`git worktree add /tmp/pm-before ...`) with the same venv
# would silently run the installed tree's code. `python -c` puts the working directory (ROOT)
# first on sys.path, and PYTHONPATH is set to ROOT as well.
CLI = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]


def on_this_tree(env: dict[str, str]) -> dict[str, str]:
    """`env` with ROOT first on PYTHONPATH, so child processes import this tree."""
    paths = [str(ROOT), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return {**env, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def imported_from(env: dict[str, str]) -> str:
    """Where a child process started like the API and the workers imports `automation.queue`
    from (to check that the tree under test is the one that runs)."""
    done = subprocess.run(
        [sys.executable, "-c", "import automation.queue as q; print(q.__file__)"],
        env=on_this_tree(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


# The counts a fault run must leave at zero.
ZERO_COUNTS = (
    "lost_inboxes",
    "operations_queued",
    "operations_running",
    "overlapping_runs",
    "servers_beyond_need",
)


class JournaledEngine:
    """An Engine that records when each run starts and ends, around the real one."""

    def __init__(self, inner: Any, journal: Path) -> None:
        self.inner, self.journal = inner, journal
        self.name = inner.name

    def _write(self, stack: str, kind: str, event: str) -> None:
        line = json.dumps(
            {"stack": stack, "pid": os.getpid(), "kind": kind, "event": event, "t": time.time()}
        )
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def _run(self, kind: str, stack: str, config: Any, on_event: Any = None) -> Any:
        self._write(stack, kind, "start")
        event = "end"
        try:
            return getattr(self.inner, kind)(stack, config, on_event)
        except Exception as exc:
            # Refused by the stack lock before it did anything: not a run (the audit drops it).
            if getattr(exc, "details", {}).get("held"):
                event = "refused"
            raise
        finally:
            self._write(stack, kind, event)

    def preview(self, stack: str, config: Any, on_event: Any = None) -> Any:
        return self._run("preview", stack, config, on_event)

    def up(self, stack: str, config: Any, on_event: Any = None) -> Any:
        return self._run("up", stack, config, on_event)

    def refresh(self, stack: str, config: Any, on_event: Any = None) -> Any:
        return self._run("refresh", stack, config, on_event)

    def destroy(self, stack: str, config: Any, on_event: Any = None) -> Any:
        return self._run("destroy", stack, config, on_event)

    def outputs(self, stack: str) -> Any:
        return self.inner.outputs(stack)


def _worker_main(argv: list[str]) -> int:
    from automation import queue
    from scheduler.workers import OperationWorkers

    try:  # the one engine_for (a tree measured as BEFORE has it in the queue module)
        from automation.engines import engine_for
    except ImportError:
        engine_for = queue.engine_for  # type: ignore[attr-defined]
    try:  # every table known, as in `penguinmails worker`
        import database.models  # noqa: F401
    except ImportError:
        import domain.models  # type: ignore[import-not-found]  # noqa: F401

    parser = argparse.ArgumentParser(prog="_fault_harness worker")
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger(__name__).info("automation.queue from %s", queue.__file__)

    def engines(ws: Any) -> JournaledEngine:
        return JournaledEngine(engine_for(ws), args.journal)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parameters = inspect.signature(OperationWorkers).parameters
    if "engines" in parameters:
        from settings import get_settings

        # The settings are passed in since the settings were given to each room (issue 10).
        given = (get_settings(),) if "settings" in parameters else ()
        workers = OperationWorkers(*given, threads=args.threads, engines=engines)
        workers.start()
        stop.wait()
        workers.stop()
    else:
        _plain_loops(args.threads, engines, stop)
    return 0


def _plain_loops(threads: int, engines: Callable[[Any], Any], stop: threading.Event) -> None:
    """Worker threads for trees whose `OperationWorkers` takes no `engines` (before commit
    54c8b2c, e.g. ed9dafb, which the faults benchmark measures as BEFORE): there the journaling
    engine can only be passed to `automation.queue.run_one(worker_id, engines)`, so this is
    `OperationWorkers._loop` of that tree with the engine factory added (same worker ids, same
    poll interval, an exception logged and the loop going on)."""
    import socket

    from automation import queue
    from settings import get_settings

    log = logging.getLogger(__name__)
    poll = get_settings().poll_interval_seconds
    prefix = f"{socket.gethostname()}:{os.getpid()}"

    def loop(worker_id: str) -> None:
        while not stop.is_set():
            try:
                busy = queue.run_one(worker_id, engines)
            except Exception:
                log.exception("operation worker %s: claim failed", worker_id)
                busy = False
            if not busy:
                stop.wait(poll)

    pool = [
        threading.Thread(target=loop, args=(f"{prefix}:{i}",), daemon=True) for i in range(threads)
    ]
    for thread in pool:
        thread.start()
    stop.wait()
    for thread in pool:
        thread.join(timeout=30)


@dataclass
class Cluster:
    """One `penguinmails api` and N journaling workers, all on `database_url`."""

    env: dict[str, str]
    journal: Path
    workers: int = 3
    worker_threads: int = 1
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    kills: dict[int, float] = field(default_factory=dict)  # pid -> time of SIGKILL
    logs: Path | None = None

    def start_worker(self) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"worker-{len(self.procs)}.log", "wb") if self.logs else None  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks._fault_harness",
                "worker",
                "--journal",
                str(self.journal),
                "--threads",
                str(self.worker_threads),
            ],
            env=on_this_tree(self.env),
            cwd=ROOT,
            stdout=out or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill_one(self, rng: random.Random) -> int:
        """SIGKILL a random live worker and start a replacement; returns the killed pid."""
        victim = rng.choice(self.live())
        self.kills[victim.pid] = time.time()
        victim.kill()
        victim.wait()
        self.start_worker()
        return victim.pid

    def stop(self) -> None:
        for proc in self.live():
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def cluster(
    env: dict[str, str], journal: Path, workers: int = 3, logs: Path | None = None
) -> Iterator[Cluster]:
    c = Cluster(env=env, journal=journal, workers=workers, logs=logs)
    try:
        for _ in range(workers):
            c.start_worker()
        yield c
    finally:
        c.stop()


def _start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The API on a free port, ready. A port found free can be taken before the API binds it
    (by any connection's ephemeral port: the tests open many), so a start that fails to bind
    tries another port, up to 3 times."""
    from tests.support.ports import free_port

    for attempt in range(3):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*CLI, "api", "--port", str(port)],
                env=on_this_tree(env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        said = log.read_text()
        if "address already in use" not in said or attempt == 2:
            raise RuntimeError(f"api did not become ready:\n{said[-3000:]}")
    raise AssertionError("unreachable")


@contextmanager
def api_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """`penguinmails api` (this tree's, see CLI) on a free port, ready; stopped afterwards."""
    proc, base = _start_api(env, log)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tenant_key(env: dict[str, str], name: str = "faults") -> str:
    done = subprocess.run(
        [*CLI, "tenant", "create", name, "--json"],
        env=on_this_tree(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key: str = json.loads(done.stdout.strip().splitlines()[-1])["api_key"]
    return key


@dataclass
class Load:
    """Closed-loop HTTP clients; every answer's status and latency is kept."""

    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | None, seconds: float, error: str | None = None) -> None:
        with self.lock:
            if status is not None:
                self.statuses[status] += 1
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)

    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def percentiles(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        if not ordered:
            return {}

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        return {
            "p50_ms": at(0.5),
            "p95_ms": at(0.95),
            "p99_ms": at(0.99),
            "max_ms": ordered[-1] * 1000,
        }


def create_workspaces(base: str, key: str, count: int, prefix: str = "ws") -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    ids = []
    for i in range(count):
        r = httpx.post(
            f"{base}/api/v1/workspaces",
            json={"name": f"{prefix}-{i}", "sandbox": True},
            headers=headers,
            timeout=30,
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


def _post_inbox(http: httpx.Client, workspace: str, local: str, load: Load) -> str | None:
    """One `POST .../inboxes`, its answer and latency recorded; the inbox id if accepted."""
    body = {
        "email_address": f"{local}@{workspace[:8]}.example.com",
        "display_name": local,
        "vps_provider": "hetzner",
        "vps_size": "starter",
    }
    started = time.perf_counter()
    try:
        r = http.post(f"/api/v1/workspaces/{workspace}/inboxes", json=body)
    except httpx.HTTPError as exc:
        load.record(None, time.perf_counter() - started, type(exc).__name__)
        return None
    load.record(r.status_code, time.perf_counter() - started)
    return str(r.json()["id"]) if r.status_code == 202 else None


def create_inboxes(
    base: str,
    key: str,
    workspaces: list[str],
    per_workspace: int,
    clients: int,
    load: Load | None = None,
    prefix: str = "user",
) -> list[str]:
    """`per_workspace` inboxes in each workspace, created by `clients` concurrent clients;
    returns the ids of the inboxes the API accepted."""
    load = load or Load()
    jobs = [(ws, i) for i in range(per_workspace) for ws in workspaces]
    accepted: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    if not jobs:
                        return
                    ws, i = jobs.pop()
                inbox_id = _post_inbox(http, ws, f"{prefix}{i}", load)
                if inbox_id:
                    with lock:
                        accepted.append(inbox_id)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted


def create_inboxes_for(
    base: str,
    key: str,
    workspaces: list[str],
    seconds: float,
    clients: int,
    load: Load | None = None,
    prefix: str = "loop",
    timeout: float = 60,
) -> list[str]:
    """`clients` concurrent clients, each in a closed loop for `seconds`: create an inbox (in
    the workspaces in turn, starting at its own), wait for the answer, create the next. Every
    answer goes into `load`; returns the ids of the inboxes the API accepted."""
    load = load or Load()
    accepted: list[str] = []
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + seconds

    def client(c: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as http:
            n = 0
            while time.monotonic() < deadline:
                ws = workspaces[(c + n) % len(workspaces)]
                inbox_id = _post_inbox(http, ws, f"{prefix}{c}-{n}", load)
                n += 1
                if inbox_id:
                    with lock:
                        accepted.append(inbox_id)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return accepted


def settle(engine: Engine, timeout: float) -> bool:
    """Wait until no operation is queued or running (True), or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            pending = conn.scalar(
                text("SELECT count(*) FROM operations WHERE status IN ('queued', 'running')")
            )
        if not pending:
            return True
        time.sleep(0.5)
    return False


def overlapping_runs(journal: Path, kills: dict[int, float]) -> int:
    """Pairs of runs of one stack whose time intervals intersect. A run with no end belongs to
    a killed worker and ends at its kill."""
    starts: dict[tuple[str, int], list[float]] = defaultdict(list)
    intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if not journal.exists():
        return 0
    for line in journal.read_text().splitlines():
        entry = json.loads(line)
        key = (entry["stack"], entry["pid"])
        if entry["event"] == "start":
            starts[key].append(entry["t"])
        elif starts[key]:
            started = starts[key].pop(0)
            if entry["event"] != "refused":  # the stack lock turned it away: it never ran
                intervals[entry["stack"]].append((started, entry["t"]))
    for (stack, pid), open_starts in starts.items():
        for started in open_starts:
            intervals[stack].append((started, kills.get(pid, time.time())))
    overlaps = 0
    for runs in intervals.values():
        runs.sort()
        latest_end = float("-inf")
        for start, end in runs:
            if start < latest_end:
                overlaps += 1
            latest_end = max(latest_end, end)
    return overlaps


def kills_mid_run(journal: Path, kills: dict[int, float]) -> int:
    """Kills that landed while the killed worker was running a stack (a start with no end)."""
    open_runs: dict[int, int] = defaultdict(int)
    if journal.exists():
        for line in journal.read_text().splitlines():
            entry = json.loads(line)
            open_runs[entry["pid"]] += 1 if entry["event"] == "start" else -1
    return sum(1 for pid in kills if open_runs[pid] > 0)


def audit(
    engine: Engine, journal: Path, kills: dict[int, float], per_server: int
) -> dict[str, int]:
    """What the faults left behind; every count in ZERO_COUNTS must be 0."""
    with engine.connect() as conn:
        lost = conn.scalar(
            text("SELECT count(*) FROM inboxes WHERE status NOT IN ('dns_pending', 'ready')")
        )
        queued = conn.scalar(text("SELECT count(*) FROM operations WHERE status = 'queued'"))
        running = conn.scalar(text("SELECT count(*) FROM operations WHERE status = 'running'"))
        beyond = conn.scalar(
            text(
                """
                SELECT coalesce(sum(greatest(servers - ceil(inboxes::numeric / :per), 0)), 0)
                FROM (
                    SELECT
                      (SELECT count(*) FROM vps_servers s WHERE s.workspace_id = w.id) AS servers,
                      (SELECT count(*) FROM inboxes i WHERE i.workspace_id = w.id) AS inboxes
                    FROM workspaces w
                ) per_workspace
                """
            ),
            {"per": per_server},
        )
        inboxes = conn.scalar(text("SELECT count(*) FROM inboxes"))
        superseded = conn.scalar(
            text("SELECT count(*) FROM operations WHERE status = 'superseded'")
        )
        attempts = conn.scalar(text("SELECT coalesce(max(attempts), 0) FROM operations"))
    return {
        "inboxes": int(inboxes or 0),
        "lost_inboxes": int(lost or 0),
        "operations_queued": int(queued or 0),
        "operations_running": int(running or 0),
        "overlapping_runs": overlapping_runs(journal, kills),
        "servers_beyond_need": int(beyond or 0),
        "kills": len(kills),
        "operations_superseded": int(superseded or 0),
        "max_attempts_used": int(attempts or 0),
    }


def kill_randomly(
    c: Cluster, seconds: float, interval: tuple[float, float], seed: int = 7
) -> Callable[[], None]:
    """Start a thread that SIGKILLs a random worker every `interval` seconds for `seconds`;
    returns a function that waits for it."""
    rng = random.Random(seed)
    done = threading.Event()

    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done.is_set():
            done.wait(rng.uniform(*interval))
            if time.monotonic() < deadline:
                c.kill_one(rng)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join()

    return join


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2:]))
    print("usage: python -m benchmarks.__fault_harness worker --journal FILE", file=sys.stderr)
    sys.exit(2)
