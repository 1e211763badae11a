"""Webhooks must not be a way into our own network (SSRF): a URL whose host is, or resolves to,
a loopback, private, link-local or reserved address is refused unless
`PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS` is set. Checked when the endpoint is created (the
literal host, including the shorthand IPv4 forms `127.1` and `2130706433` that resolvers accept)
and again before every delivery (what the name resolves to now)."""

import asyncio
import ipaddress
import socket


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def literal_internal(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return _internal(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:  # inet_aton takes what getaddrinfo would: "127.1", "0x7f.1", "2130706433"
        return _internal(ipaddress.IPv4Address(socket.inet_aton(host)))
    except OSError:
        return False


async def resolved_internal(host: str) -> str | None:
    """The internal address `host` resolves to now, if any. A name that does not resolve is
    left to the delivery itself to report."""
    if literal_internal(host):
        return host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if _internal(ipaddress.ip_address(address)):
            return address
    return None
