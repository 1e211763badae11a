"""Operation workers: threads that claim and run stack operations, so the API's event loop and
the sweeps never wait on Pulumi. Any number of these run in any number of processes, on any
number of hosts: each process records its host in `worker_hosts` (a heartbeat every
`host_heartbeat_seconds`, stale rows pruned, its own row deleted when it stops), which is how a
host on a machine-local Pulumi backend knows it is not alone (`domain.hosts.backends.check`)."""

import logging
import os
import threading
from datetime import timedelta

from sqlalchemy.orm import Session

from automation import queue
from database.outage import classify, outage, reason
from database.transactions import run_in_transaction
from domain.hosts import backends
from domain.hosts import service as hosts
from kit.time import utcnow
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
        self.host = backends.host_name(settings)
        self.pid = os.getpid()
        self.started_at = utcnow()
        self.prefix = f"{self.host}:{self.pid}"
        self._beats: threading.Thread | None = None

    def beat(self) -> None:
        """Record this process as alive and prune hosts' rows gone stale: one short,
        idempotent transaction."""
        backend = backends.resolve(self.settings)
        now = utcnow()

        def write(session: Session) -> None:
            hosts.beat(
                session,
                host=self.host,
                pid=self.pid,
                started_at=self.started_at,
                now=now,
                pulumi_backend=backend.kind,
                backend_local=backend.local,
            )
            hosts.prune(session, before=now - timedelta(seconds=self.settings.host_stale_seconds))

        run_in_transaction(write)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.settings.host_heartbeat_seconds):
            try:
                self.beat()
            except Exception as exc:  # an outage must not end the heartbeat
                if classify(exc) == "outage":
                    outage.failed(reason(exc))
                else:
                    log.warning("worker heartbeat failed", exc_info=True)

    def _install_plugins(self) -> None:
        """The live engine's pinned plugins, once per host at start (when the CLI is here)."""
        import shutil

        if shutil.which(self.settings.pulumi_command) is None:
            log.info("no Pulumi CLI (%s): live operations will fail", self.settings.pulumi_command)
            return
        from automation.live import LiveEngine

        try:
            installed = LiveEngine(settings=self.settings).install_plugins()
        except Exception:
            log.warning(
                "installing the Pulumi plugins failed; retried at the first run", exc_info=True
            )
            return
        if installed:
            log.info("Pulumi plugins installed: %s", ", ".join(installed))

    def start(self) -> None:
        if self.count > 0:
            log.info(
                "host %s: live stacks keep Pulumi state in %s",
                self.host,
                backends.resolve(self.settings).display,  # never the password
            )
            # Registered before the first claim, so a host that starts beside another sees it.
            try:
                self.beat()
            except Exception:
                log.warning("worker heartbeat failed at start", exc_info=True)
            self._beats = threading.Thread(
                target=self._beat_loop, name="worker-heartbeat", daemon=True
            )
            self._beats.start()
            threading.Thread(
                target=self._install_plugins, name="pulumi-plugins", daemon=True
            ).start()
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
        if self._beats is not None:
            self._beats.join(timeout=30)
            try:
                run_in_transaction(
                    lambda session: hosts.leave(
                        session, host=self.host, pid=self.pid, started_at=self.started_at
                    )
                )
            except Exception:  # pruned once stale anyway
                log.warning("could not remove this worker's heartbeat row", exc_info=True)

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
