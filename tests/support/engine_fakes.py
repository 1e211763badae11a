"""Fake engines for queue tests: small classes behind the Engine interface (the Pulumi engine is
the boundary we fake), recording what they were asked to do."""

import threading
from typing import Any

from automation.engine import EventCallback, ResourceChange, StackResult, summarize
from automation.errors import EngineError
from stacks.config import FleetConfig


class FleetEcho:
    """Reports every desired server as running with an address, every mailbox as reachable."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, FleetConfig]] = []
        self.lock = threading.Lock()

    def _result(self, kind: str, stack: str, config: FleetConfig) -> StackResult:
        with self.lock:
            self.calls.append((kind, stack, config))
        servers = {
            s.name: {
                "provider_id": str(1000 + i),
                "ipv4": s.ip or f"198.51.100.{10 + i}",
                "ipv6": None,
                "hostname": s.hostname,
                "status": "running",
                "stalwart_version": config.stalwart_version,
            }
            for i, s in enumerate(config.servers)
        }
        hosts = {s.name: s.hostname for s in config.servers}
        mailboxes = {
            m.address: {
                "smtp": {
                    "host": hosts[m.server],
                    "port": 465,
                    "security": "tls",
                    "username": m.address,
                },
                "imap": {
                    "host": hosts[m.server],
                    "port": 993,
                    "security": "tls",
                    "username": m.address,
                },
            }
            for m in config.mailboxes
        }
        changes = [
            ResourceChange("create", "hcloud:index/server:Server", s.name) for s in config.servers
        ]
        return StackResult(
            changes=changes,
            summary=summarize(changes, 0),
            outputs={"servers": servers, "mailboxes": mailboxes},
            log=[f"{kind} {stack}"],
        )

    def preview(
        self, stack: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._result("preview", stack, config)

    def up(
        self, stack: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._result("up", stack, config)

    refresh = up
    destroy = up

    def outputs(self, stack: str) -> dict[str, Any]:
        return {}


class Failing(FleetEcho):
    def __init__(self, transient: bool, message: str = "provider said no") -> None:
        super().__init__()
        self.transient, self.message = transient, message

    def up(
        self, stack: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        with self.lock:
            self.calls.append(("up", stack, config))
        raise EngineError(self.message, transient=self.transient)
