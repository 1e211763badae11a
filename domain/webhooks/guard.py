"""Webhooks must not be a way into our own network (SSRF): a URL whose host is, or resolves to,
a loopback, private, link-local or reserved address is refused unless
`PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS` is set. Checked when the endpoint is created (the
literal host, including the shorthand IPv4 forms `127.1` and `2130706433` that resolvers accept)
and again before every delivery (what the name resolves to now).

A URL must also be one a request can be built for (`usable_url`): httpx parses it, its host is
valid IDNA and in DNS limits (labels of 1..63 octets, at most 253 in all). Internationalised hosts
are kept in their ASCII (punycode) form, the form that is checked, resolved and connected to."""

import asyncio
import ipaddress
import socket

import httpx


class UnusableURL(ValueError):
    """No request can be built for this URL; the message says why."""


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def _check_name(host: str) -> None:
    """`host` (ASCII) is an IP literal or a name getaddrinfo accepts without asking a resolver."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name:
        raise UnusableURL("the host is empty")
    if len(name) > 253:
        raise UnusableURL(f"the host is {len(name)} characters long (at most 253)")
    for label in name.split("."):
        if not label:
            raise UnusableURL(f"the host {host!r} has an empty label")
        if len(label) > 63:
            raise UnusableURL(f"the host has a label of {len(label)} characters (at most 63)")


def usable_url(url: str) -> httpx.URL:
    """`url` as a request is built for it, host in ASCII (punycode) form; `UnusableURL` if no
    request could be. Never resolves the name."""
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        parsed.host  # noqa: B018 - decodes punycode labels: refuses what IDNA 2008 does not allow
    except Exception as exc:  # httpx.InvalidURL, idna.IDNAError (a UnicodeError), ...
        raise UnusableURL(str(exc) or type(exc).__name__) from exc
    if parsed.scheme not in ("http", "https"):
        raise UnusableURL(f"the scheme is {parsed.scheme!r}, not http or https")
    _check_name(host)
    return parsed


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
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False


async def resolved_internal(host: str) -> str | None:
    """The internal address `host` (ASCII, from `usable_url`) resolves to now, if any. A name
    that does not resolve is left to the delivery itself to report."""
    if literal_internal(host):
        return host
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, UnicodeError):  # UnicodeError: a label the idna codec refuses
        return None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if _internal(ipaddress.ip_address(address)):
            return address
    return None
