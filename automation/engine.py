"""The one interface both engines implement, and what a run returns.

`sandbox` runs the `stacks/` program under Pulumi's mock runtime with simulated provider results;
`live` drives the Pulumi CLI through the Automation API. Callers (the operations queue, the CLI)
see only this module: `Engine`, `StackResult`, `ResourceChange`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from stacks.config import FleetConfig

Op = Literal["create", "update", "delete", "replace"]
OPS: tuple[Op, ...] = ("create", "update", "delete", "replace")
EventCallback = Callable[[str], None]


@dataclass(frozen=True)
class ResourceChange:
    op: Op
    type: str  # Pulumi type token, e.g. hcloud:index/server:Server
    name: str  # the resource's logical name

    def as_dict(self) -> dict[str, str]:
        return {"op": self.op, "type": self.type, "name": self.name}

    def __str__(self) -> str:
        return f"{self.op:<8} {self.type} {self.name}"


@dataclass
class StackResult:
    changes: list[ResourceChange] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)  # op -> count, with "same"
    outputs: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def summarize(changes: list[ResourceChange], same: int) -> dict[str, int]:
    summary: dict[str, int] = {op: 0 for op in OPS}
    for change in changes:
        summary[change.op] += 1
    summary["same"] = same
    return summary


class Engine(Protocol):
    name: str  # "sandbox" | "live"

    def preview(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult: ...

    def up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult: ...

    def refresh(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult: ...

    def destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult: ...

    def outputs(self, stack_name: str) -> dict[str, Any]: ...


class NoopEngine:
    """Changes nothing and reports nothing: for callers that need an Engine but no fleet."""

    name = "noop"

    def _run(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return StackResult(summary=summarize([], 0), log=[f"noop engine: {stack_name}"])

    preview = up = refresh = destroy = _run

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return {}
