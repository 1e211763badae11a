"""Simulated provider time for sandbox runs (`PENGUINMAILS_SANDBOX_LATENCY_SECONDS`): demos feel
like a real fleet, and failover can be exercised on an operation that is still running."""

import time
from typing import Any

from automation.engine import Engine, EventCallback, StackResult
from stacks.config import FleetConfig


class DelayedEngine:
    def __init__(self, inner: Engine, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds
        self.name = inner.name

    def _wait(self, on_event: EventCallback | None) -> None:
        if on_event:
            on_event(f"sandbox: simulating {self.seconds:.1f}s of provider time")
        time.sleep(self.seconds)

    def preview(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self.inner.preview(stack_name, config, on_event)

    def up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        self._wait(on_event)
        return self.inner.up(stack_name, config, on_event)

    def refresh(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self.inner.refresh(stack_name, config, on_event)

    def destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        self._wait(on_event)
        return self.inner.destroy(stack_name, config, on_event)

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return self.inner.outputs(stack_name)
