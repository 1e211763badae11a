"""Run one fixed command on a server over SSH with the workspace's key.

Commands are built here from constants and `shlex.quote`d values; nothing from a request is ever
pasted into a shell unquoted. The private key is given to asyncssh in memory, never written to
disk or put on a command line.

Host keys are trusted on first use: a target without a pinned key connects, and the key the
server showed comes back with the result for the caller to pin; a target with a pinned key refuses
any other (`HostKeyChanged`), which is how a man in the middle or a rebuilt server shows up."""

import asyncio
import functools
import shlex
import socket
import time
from dataclasses import dataclass

import asyncssh
from asyncssh.encryption import get_default_encryption_algs
from asyncssh.kex import get_default_kex_algs

from probes.net import describe


class SshError(Exception):
    """The command could not be run (connect, auth, timeout); not a non-zero exit."""


class HostKeyChanged(SshError):
    """The server presented a host key other than the pinned one."""


@dataclass(frozen=True)
class SshTarget:
    address: str
    port: int
    user: str
    private_key: str
    host_key: str | None = None  # pinned OpenSSH public key, None until first seen

    def __repr__(self) -> str:
        return f"SshTarget({self.user}@{self.address}:{self.port})"


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str
    host_key: str | None = None  # the key the server presented (OpenSSH public key line)


def _preferring(first: list[bytes], defaults: list[bytes]) -> list[str]:
    return [a.decode() for a in first + [a for a in defaults if a not in first]]


# The cheapest algorithms first, asyncssh's defaults after them (a server picks the first of ours
# it supports, so any server reachable before still is): a probe runs one short command, and
# asyncssh's first choices (a post-quantum hybrid key exchange, ChaCha20-Poly1305 set up anew in
# Python for every packet) were most of a sweep's SSH cost. curve25519-sha256 is OpenSSH's
# default; AES-GCM is done in OpenSSL.
KEX_ALGS = _preferring([b"curve25519-sha256"], get_default_kex_algs())
ENCRYPTION_ALGS = _preferring(
    [b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com"], get_default_encryption_algs()
)


@functools.lru_cache(maxsize=64)
def _private_key(text: str) -> asyncssh.SSHKey:
    """Parsed once per sweep process, not once per server (the workspace's key is shared)."""
    return asyncssh.import_private_key(text)


def command(*argv: str) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def privileged(user: str, argv: list[str]) -> str:
    """As root directly, else through non-interactive sudo."""
    return command(*argv) if user == "root" else command("sudo", "-n", *argv)


@dataclass(frozen=True)
class Banner:
    """The first line an SSH port sent, read without consuming it: the same connection goes on
    to the SSH handshake (`run(..., sock=banner.sock)`), so the reachable and disk checks cost
    one connection, not two."""

    sock: socket.socket
    line: bytes
    ms: float


async def banner(address: str, port: int, *, keep: bool, limit: int = 255) -> Banner:
    """Connect and peek at the server's first line (the SSH identification string); the socket
    stays open for `run` if `keep`, else it is closed (and `Banner.sock` with it)."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:  # an IP address (every server has one): no resolver, no trip to a thread pool
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )[0]
    except socket.gaierror:
        family, kind, proto, _, sockaddr = (
            await loop.getaddrinfo(address, port, type=socket.SOCK_STREAM)
        )[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, sockaddr)
        while True:
            await _readable(loop, sock)
            data = sock.recv(limit, socket.MSG_PEEK)
            if not data or b"\n" in data or len(data) >= limit:  # EOF: b"", not SSH
                ms = round((time.perf_counter() - started) * 1000, 1)
                if not keep:
                    sock.close()
                return Banner(sock, data.split(b"\n")[0], ms)
            await asyncio.sleep(0.01)  # a partial line: peeking again at once would spin
    except BaseException:
        sock.close()
        raise


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def run(
    target: SshTarget,
    cmd: str,
    *,
    connect_timeout: float,
    timeout: float,
    sock: socket.socket | None = None,
) -> CommandResult:
    """`cmd` over a new connection, or over `sock` (connected, nothing read from it yet)."""
    try:
        key = _private_key(target.private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SshError("the workspace's SSH key cannot be read") from exc
    known_hosts: (
        tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]] | None
    ) = None
    if target.host_key:
        try:
            pinned = asyncssh.import_public_key(target.host_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise SshError("the pinned host key cannot be read") from exc
        known_hosts = ([pinned], [], [])
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                target.address,
                target.port,
                sock=sock,
                username=target.user,
                client_keys=[key],
                known_hosts=known_hosts,
                agent_path=None,
                config=None,
                preferred_auth="publickey",
                login_timeout=connect_timeout,
                connect_timeout=connect_timeout,
                kex_algs=KEX_ALGS,
                encryption_algs=ENCRYPTION_ALGS,
            ) as conn:
                result = await conn.run(cmd, check=False)
                seen = conn.get_server_host_key()
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyChanged(
            f"ssh {target.address}:{target.port}: host key changed: the server no longer presents "
            "the key pinned when it was first reached (rebuilt server, or a man in the middle); "
            "clear the pin only after checking"
        ) from exc
    except TimeoutError as exc:
        raise SshError(f"ssh {target.address}:{target.port}: timed out") from exc
    except (OSError, asyncssh.Error) as exc:
        reason = exc.reason if isinstance(exc, asyncssh.Error) else describe(exc)
        raise SshError(f"ssh {target.address}:{target.port}: {reason}") from exc
    return CommandResult(
        exit_status=result.exit_status if result.exit_status is not None else -1,
        stdout=_text(result.stdout),
        stderr=_text(result.stderr),
        host_key=seen.export_public_key("openssh").decode().strip() if seen else None,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""
