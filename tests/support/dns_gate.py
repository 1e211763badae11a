"""A UDP relay in front of a DNS server that holds every reply until it is opened.

A test that needs two processes to share a sweep cannot rely on timing: on a loaded machine the
spawned helper starts only after the first process has drained every batch (CI saw [1230, 0]).
With the replies held, the first process waits on its first batch, and the test opens the gate
only once it sees the helper's claim. Queries are forwarded at once (each client address gets
its own upstream socket, so replies find their way back); only the answers wait.
"""

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator


class DnsGate:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listener.bind((host, 0))
        self.address: tuple[str, int] = (host, int(self.listener.getsockname()[1]))
        self._open = threading.Event()
        self._stop = threading.Event()
        self._held: list[tuple[bytes, tuple[str, int]]] = []
        self._lock = threading.Lock()
        self._sockets: dict[tuple[str, int], socket.socket] = {}
        self._thread = threading.Thread(target=self._run, name="dns-gate", daemon=True)

    def open(self) -> None:
        """Release every held reply; later replies pass straight through."""
        with self._lock:
            self._open.set()
            held, self._held = self._held, []
        for data, client in held:
            self.listener.sendto(data, client)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ, None)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data, source = sock.recvfrom(65535)
                    if key.data is None:  # a query from a client
                        up = self._sockets.get(source)
                        if up is None:
                            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            up.connect(self.upstream)
                            self._sockets[source] = up
                            selector.register(up, selectors.EVENT_READ, source)
                        up.send(data)
                    else:  # a reply for the client key.data
                        with self._lock:
                            if not self._open.is_set():
                                self._held.append((data, key.data))
                                continue
                        self.listener.sendto(data, key.data)

    def __enter__(self) -> "DnsGate":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self.listener, *self._sockets.values()]:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def dns_gate(upstream: tuple[str, int]) -> Iterator[DnsGate]:
    with DnsGate(upstream) as gate:
        yield gate
