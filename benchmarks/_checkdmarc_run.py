"""The checkdmarc baseline of `python -m benchmarks dns`, run by the interpreter of its own venv
(`.venv-checkdmarc`: checkdmarc pins its own dnspython and must not share ours):

    .venv-checkdmarc/bin/python -I benchmarks/_checkdmarc_run.py HOST PORT THREADS SECONDS < domains

(`-I`: this directory holds a `dns.py`, which must not shadow dnspython.) Checks the domains, one
a line on stdin (one at a time when THREADS is 1, else on a pool of THREADS threads), until
SECONDS have passed or the list is done, and prints one JSON line: domains checked, seconds.

Every lookup goes to HOST:PORT (the benchmark's nsd or its relay), never to the machine's
resolver: dnspython resolvers are configured with that nameserver instead of /etc/resolv.conf,
and `socket.getaddrinfo` refuses names (checkdmarc's HTTPS fetch of an MTA-STS policy would
otherwise resolve `mta-sts.<domain>` through the OS), so such a fetch fails at once, as the
policy host does not exist in the benchmark's zones anyway."""

import concurrent.futures
import importlib
import ipaddress
import json
import socket
import sys
import threading
import time
from typing import Any


def _pin_nameserver(host: str, port: int) -> list[Any]:
    nameserver = importlib.import_module("dns.nameserver")
    resolver = importlib.import_module("dns.resolver")
    ours = [nameserver.Do53Nameserver(host, port)]

    def configure(self: Any, *args: object, **kwargs: object) -> None:
        self.nameservers = list(ours)

    resolver.Resolver.read_resolv_conf = configure  # what Resolver() reads on Unix
    resolver.reset_default_resolver()
    real = socket.getaddrinfo

    def numeric_only(name: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            ipaddress.ip_address(name.decode() if isinstance(name, bytes) else str(name))
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: not resolved here") from None
        return real(name, *args, **kwargs)

    socket.getaddrinfo = numeric_only
    return ours


def main(argv: list[str]) -> int:
    host, port, threads, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    domains = sys.stdin.read().split()
    ours = _pin_nameserver(host, port)
    checkdmarc = importlib.import_module("checkdmarc")
    deadline = time.perf_counter() + seconds
    done = 0
    lock = threading.Lock()

    def check(domain: str) -> None:
        nonlocal done
        if time.perf_counter() >= deadline:
            return
        checkdmarc.check_domains([domain], nameservers=ours, timeout=2.0)
        with lock:
            done += 1

    started = time.perf_counter()
    if threads <= 1:
        for domain in domains:
            if time.perf_counter() >= deadline:
                break
            check(domain)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(check, domains))
    print(json.dumps({"domains": done, "seconds": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
