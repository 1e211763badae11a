"""What the tests' real DNS servers (tests/support/nsd, knot, pdns) share: finding the binary,
skipping or failing without it, running it with its output in a log file, waiting until it
answers (or failing with the log's tail), stopping it, and asking it over DNS.

`require(found, reason, flag)` skips a test when a server is not installed, and fails it when the
`flag` environment variable (PENGUINMAILS_REQUIRE_NSD, ..._KNOT, ..._PDNS) is 1, as in CI.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

T = TypeVar("T")


def locate(path: str, name: str) -> str | None:
    """`path` (a PENGUINMAILS_* override or the Debian path) if it exists, else `name` on PATH."""
    return path if os.path.exists(path) else shutil.which(name)


def sibling(binary: str, name: str) -> str | None:
    """A companion tool (`nsd-control`, `knotc`): beside `binary`, else on PATH."""
    beside = os.path.join(os.path.dirname(binary), name)
    return beside if os.path.exists(beside) else shutil.which(name)


def require(found: T | None, reason: str, flag: str) -> T:
    """`found`, or skip the test for `reason`; fail it instead when `flag`=1."""
    import pytest

    if found is None:
        if os.environ.get(flag) == "1":
            pytest.fail(f"{reason} and {flag}=1", pytrace=False)
        pytest.skip(reason)
    return found


class Daemon:
    """One server process in the foreground, stdout and stderr appended to `log`. `logs` are
    further files the server writes itself, shown with it when it fails."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, logs: Sequence[Path] = ()):
        self.name = name
        self.log = log
        self.logs = [log, *logs]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def tail(self, chars: int = 2000) -> str:
        """The end of each log, for an error message."""
        parts = []
        for path in self.logs:
            text = path.read_text(errors="replace").strip() if path.exists() else ""
            if text:
                parts.append(f"{path.name}: {text[-chars:]}")
        return "\n".join(parts) or "(no log output)"

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited ({code}):\n{self.tail()}")

    def wait_until(
        self, ready: Callable[[], bool], what: str, timeout: float = 20, interval: float = 0.05
    ) -> None:
        """Until `ready()` (which returns False while the server does not answer yet), failing
        at once if the process exits and after `timeout` seconds with `what` it did not do."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if ready():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not {what} in time:\n{self.tail()}")
            time.sleep(interval)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL after 10 seconds."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Server(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


@contextmanager
def serving(server: S) -> Iterator[S]:
    """`server` started, and stopped on leaving."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def soa_reply(host: str, port: int, origin: str, timeout: float) -> dns.message.Message | None:
    """The server's UDP answer to `origin`'s SOA, or None while it does not answer."""
    try:
        query = dns.message.make_query(origin.rstrip(".") + ".", dns.rdatatype.SOA)
        return dns.query.udp(query, host, port=port, timeout=timeout)
    except (TimeoutError, OSError, dns.exception.DNSException):
        return None


def record_values(host: str, port: int, name: str, rtype: str) -> list[str]:
    """The record values at `name` (absolute, no trailing dot) as the server answers them over
    TCP, sorted; TXT values joined into one string each."""
    reply = dns.query.tcp(
        dns.message.make_query(name.rstrip(".") + ".", rtype), host, port=port, timeout=2
    )
    wanted = dns.rdatatype.from_text(rtype)
    out = []
    for rrset in reply.answer:
        if rrset.rdtype != wanted:
            continue
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.TXT:
                out.append(b"".join(rdata.strings).decode())
            else:
                out.append(rdata.to_text())
    return sorted(out)
