"""Run one fixed command on a server over SSH with the workspace's key.

Commands are built here from constants and `shlex.quote`d values; nothing from a request is ever
pasted into a shell unquoted. The private key is given to asyncssh in memory, never written to
disk or put on a command line. Host keys are not pinned yet (known_hosts=None): the control plane
has no record of them (see docs/health.md)."""

import asyncio
import shlex
from dataclasses import dataclass

import asyncssh

from probes.net import describe


class SshError(Exception):
    """The command could not be run (connect, auth, timeout); not a non-zero exit."""


@dataclass(frozen=True)
class SshTarget:
    address: str
    port: int
    user: str
    private_key: str

    def __repr__(self) -> str:
        return f"SshTarget({self.user}@{self.address}:{self.port})"


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


def command(*argv: str) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def privileged(user: str, argv: list[str]) -> str:
    """As root directly, else through non-interactive sudo."""
    return command(*argv) if user == "root" else command("sudo", "-n", *argv)


async def run(
    target: SshTarget, cmd: str, *, connect_timeout: float, timeout: float
) -> CommandResult:
    try:
        key = asyncssh.import_private_key(target.private_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SshError("the workspace's SSH key cannot be read") from exc
    try:
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(
                target.address,
                target.port,
                username=target.user,
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                config=None,
                preferred_auth="publickey",
                login_timeout=connect_timeout,
                connect_timeout=connect_timeout,
            ) as conn:
                result = await conn.run(cmd, check=False)
    except TimeoutError as exc:
        raise SshError(f"ssh {target.address}:{target.port}: timed out") from exc
    except (OSError, asyncssh.Error) as exc:
        reason = exc.reason if isinstance(exc, asyncssh.Error) else describe(exc)
        raise SshError(f"ssh {target.address}:{target.port}: {reason}") from exc
    return CommandResult(
        exit_status=result.exit_status if result.exit_status is not None else -1,
        stdout=_text(result.stdout),
        stderr=_text(result.stderr),
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""
