"""Counting what reaches Postgres: every statement and every transaction begun, on every engine
of this process (SQLAlchemy events on the Engine class), while the block runs. Behaviour, not
timing: how many round trips a piece of work takes."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class Recorded:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0

    def __str__(self) -> str:
        return "\n".join(
            f"{i + 1}. {' '.join(s.split())[:200]}" for i, s in enumerate(self.statements)
        )


@contextmanager
def recording() -> Iterator[Recorded]:
    recorded = Recorded()

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        recorded.statements.append(statement)

    def on_begin(conn: Any) -> None:
        recorded.transactions += 1

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Engine, "begin", on_begin)
    try:
        yield recorded
    finally:
        event.remove(Engine, "before_cursor_execute", on_statement)
        event.remove(Engine, "begin", on_begin)
