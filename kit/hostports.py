"""`host[:port]` lists, the syntax every nameserver setting uses: items separated by commas or
spaces, IPv6 literals bare (`::1`, default port) or bracketed (`[::1]:5353`). Syntax only: what
a name resolves to is the caller's business (the DNS resolver resolves names once; the probes
take addresses as given)."""


def split_host_port(item: str, default_port: int) -> tuple[str, int]:
    """(host, port) of one item; ValueError for a port that is not a number in 1..65535."""
    host, port = item, default_port
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
        port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"{item!r}: port out of range")
    return host, port


def parse_host_ports(spec: str | None, default_port: int) -> list[tuple[str, int]]:
    return [split_host_port(item, default_port) for item in (spec or "").replace(",", " ").split()]
