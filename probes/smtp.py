"""SMTP on port 25: a 220 banner, EHLO accepted, the server names itself by its hostname (receivers
compare it with the PTR), and STARTTLS offered."""

import asyncio
from dataclasses import dataclass

from probes.net import close, describe

CLIENT_NAME = "health-probe.penguinmails.invalid"


@dataclass(frozen=True)
class SmtpObservation:
    ok: bool
    detail: str
    banner: str = ""
    greeting_names_host: bool = False
    starttls: bool = False


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """A (possibly multi-line) SMTP reply: code and the text of each line."""
    lines: list[str] = []
    while True:
        raw = await reader.readline()
        if not raw:
            raise asyncio.IncompleteReadError(b"", None)
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit():
            raise ValueError(f"not an SMTP reply: {line[:80]!r}")
        lines.append(line[4:])
        if len(line) == 3 or line[3] != "-":
            return int(line[:3]), lines
        if len(lines) > 100:
            raise ValueError("SMTP reply too long")


async def observe(address: str, port: int, hostname: str) -> SmtpObservation:
    try:
        reader, writer = await asyncio.open_connection(address, port)
    except OSError as exc:
        return SmtpObservation(False, f"SMTP port {port}: {describe(exc)}")
    try:
        code, banner = await _reply(reader)
        if code != 220:
            return SmtpObservation(False, f"SMTP banner {code} {' '.join(banner)[:200]}")
        writer.write(f"EHLO {CLIENT_NAME}\r\n".encode())
        await writer.drain()
        code, ehlo = await _reply(reader)
        if code != 250:
            return SmtpObservation(False, f"EHLO refused: {code} {' '.join(ehlo)[:200]}", banner[0])
        writer.write(b"QUIT\r\n")
        await writer.drain()
        host = hostname.lower().rstrip(".")
        names = (banner[0].split(" ")[0] if banner else "", ehlo[0].split(" ")[0])
        names_host = any(n.lower().rstrip(".") == host for n in names)
        starttls = any(line.upper().split(" ")[0] == "STARTTLS" for line in ehlo[1:])
        return SmtpObservation(True, "", banner[0], names_host, starttls)
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        return SmtpObservation(False, f"SMTP port {port}: {describe(exc)}")
    finally:
        await close(writer)
