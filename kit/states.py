"""State machines: an entity's states and the transitions allowed between them, in one table.

Each stateful entity declares its machine in its feature's `states.py` (inbox, server,
operation, webhook delivery, inbox warmup); every status write goes through `Machine.move` (ORM
objects) or `Machine.sources` (set-based SQL: `WHERE status IN (sources of the target)`), and a
test fails on a raw status write anywhere else. Writing a state the entity already has is always
allowed (idempotent sweeps and retried transactions do it)."""

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, Generic, TypeVar

from kit.errors import Conflict

S = TypeVar("S", bound=StrEnum)


class InvalidTransition(Conflict):
    """A status change the entity's machine does not allow: a bug or a race, never silent."""

    code = "invalid_transition"


class Machine(Generic[S]):
    def __init__(
        self,
        entity: str,
        states: type[S],
        transitions: Mapping[S, Iterable[S]],
        column: str = "status",
    ):
        """`column` is the attribute that holds the state (`warmup_status` for the warmup)."""
        self.entity, self.states, self.column = entity, states, column
        self.transitions: dict[S, frozenset[S]] = {
            state: frozenset(transitions.get(state, ())) for state in states
        }

    def allowed(self, source: str, target: S) -> bool:
        return source == target or target in self.transitions[self.states(source)]

    def move(self, obj: Any, target: S) -> bool:
        # `obj` is any row with a `status` column (typed `str` or, in the seed's nullable
        # columns, `str | None`; a Protocol cannot accept both).
        """Set the state of `obj` to `target`, or raise InvalidTransition. True when it changed."""
        current = getattr(obj, self.column)
        if current == target:
            return False
        if current is None or not self.allowed(current, target):
            raise InvalidTransition(
                f"{self.entity} cannot go from {current!r} to {target.value!r}", field=self.column
            )
        setattr(obj, self.column, target.value)
        return True

    def edge(self, source: S, target: S) -> dict[str, str]:
        """`{"source", "target"}` for a set-based `UPDATE ... SET status = :target WHERE
        status = :source`, checked against the table (a bug raises, at import time of use)."""
        if not self.allowed(source, target):
            raise InvalidTransition(f"{self.entity} cannot go from {source!r} to {target!r}")
        return {"source": source.value, "target": target.value}

    def sources(self, target: S) -> list[str]:
        """Every state `target` may be entered from, for a set-based `WHERE status IN (...)`."""
        return sorted(s.value for s, nexts in self.transitions.items() if target in nexts)

    def table(self) -> str:
        """The transitions drawn as text (for docstrings and docs/states.md)."""
        rows = [
            f"{state.value:>14} -> {', '.join(sorted(t.value for t in nexts)) or '(final)'}"
            for state, nexts in self.transitions.items()
        ]
        return "\n".join(rows)
