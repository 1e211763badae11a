"""The one free-port helper, for every loopback server the tests and benchmarks start (nsd,
`penguinmails serve`, uvicorn, a scratch Postgres) and for a port that must be closed."""

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, free for both UDP and TCP on `host` (bound, then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")
