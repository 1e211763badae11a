"""Operation workers: threads that claim and run stack operations, so the API's event loop and
the sweeps never wait on Pulumi. Any number of these run in any number of processes."""

import logging
import os
import socket
import threading

from automation import queue
from database.outage import classify, outage, reason
from settings import Settings

log = logging.getLogger(__name__)


class OperationWorkers:
    def __init__(
        self,
        settings: Settings,
        threads: int | None = None,
        engines: queue.EngineFactory | None = None,
    ) -> None:
        """`engines` picks the engine per workspace (default: its own, by its sandbox flag);
        the fault-injection harness passes one that journals every run."""
        self.settings = settings
        self.count = settings.worker_threads if threads is None else threads
        self.engines = engines
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.prefix = f"{socket.gethostname()}:{os.getpid()}"

    def start(self) -> None:
        for i in range(self.count):
            thread = threading.Thread(
                target=self._loop,
                args=(f"{self.prefix}:{i}",),
                name=f"operation-worker-{i}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("%d operation worker thread(s) started", self.count)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _loop(self, worker_id: str) -> None:
        poll = self.settings.poll_interval_seconds
        while not self._stop.is_set():
            try:
                busy = queue.run_one(worker_id, self.engines)
            except Exception as exc:  # a database outage must not kill the worker thread
                if classify(exc) == "outage":
                    outage.failed(reason(exc))  # logged once per outage, not once per poll
                else:
                    log.exception("operation worker %s: claim failed", worker_id)
                busy = False
            if not busy:
                self._stop.wait(poll)
