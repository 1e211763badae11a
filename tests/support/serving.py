"""Start `penguinmails` processes for end-to-end tests and talk to them over HTTP."""

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

BIN = Path(sys.executable).parent / "penguinmails"


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def create_tenant(env: dict[str, str], name: str) -> dict[str, str]:
    done = cli(env, "tenant", "create", name, "--json")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line: {done.stdout!r}"
    result: dict[str, str] = json.loads(lines[0])
    return result


@contextmanager
def serving(env: dict[str, str], *args: str, command: str = "serve") -> Iterator[str]:
    """The process's output goes to a file whose tail is printed when the test fails."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile("w+", prefix=f"penguinmails-{command}-") as log:
        proc = subprocess.Popen(
            [str(BIN), command, "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{command} did not become ready:\n{_tail(log)}")
                time.sleep(0.2)
            yield base
        except BaseException:
            print(f"--- last lines of `penguinmails {command}` ---\n{_tail(log)}")
            raise
        finally:
            _stop(proc)


@contextmanager
def working(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A `penguinmails worker`; its output goes to a file whose tail is printed when the test
    fails."""
    with tempfile.NamedTemporaryFile("w+", prefix="penguinmails-worker-") as log:
        proc = subprocess.Popen(
            [str(BIN), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield proc
        except BaseException:
            print(f"--- last lines of `penguinmails worker` (pid {proc.pid}) ---\n{_tail(log)}")
            raise
        finally:
            _stop(proc)


def _stop(proc: "subprocess.Popen[str]") -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(log: "tempfile._TemporaryFileWrapper[str]", lines: int = 60) -> str:
    log.flush()
    log.seek(0)
    return "".join(log.readlines()[-lines:])
