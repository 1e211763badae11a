"""Where the sandbox engine keeps each stack between runs.

`PostgresStore` (the default) shares the state between processes and machines; every call is its
own short transaction and none is held across a run: the engine loads, runs the program, then
saves with a compare-and-set on `version`, so two writers of one stack cannot both win.
`MemoryStore` is for benchmarks and callers without a database."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from automation.errors import StackLocked
from automation.unchanged import LastUp
from database.models.sandbox import SandboxStack


@dataclass
class StackState:
    version: int = 0
    next_id: int = 1
    # "<type>::<name>" -> {"type", "name", "id", "digests": {input: hmac}, "outputs": {...}}
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Recorded by a successful `up` that left nothing to retry (automation/unchanged.py).
    fingerprint: str | None = None


class StateStore(Protocol):
    def load(self, stack_name: str) -> StackState: ...

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        """The last `up`, if it recorded `fingerprint`; reads nothing else of the state."""
        ...

    def forget(self, stack_name: str) -> None:
        """Forget the fingerprint (before any run that may change the stack)."""
        ...

    def save(self, stack_name: str, state: StackState) -> None:
        """Store `state` as version `state.version + 1`; StackLocked if someone else saved
        since it was loaded."""
        ...

    def drop(self, stack_name: str, version: int) -> None: ...


def _conflict(stack_name: str) -> StackLocked:
    return StackLocked(
        f"stack {stack_name} was changed by another run meanwhile; run it again",
        stack=stack_name,
    )


class MemoryStore:
    def __init__(self) -> None:
        self._states: dict[str, StackState] = {}
        self._lock = threading.Lock()

    def load(self, stack_name: str) -> StackState:
        with self._lock:
            return copy.deepcopy(self._states.get(stack_name, StackState()))

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        with self._lock:
            state = self._states.get(stack_name)
            if state is None or state.fingerprint != fingerprint:
                return None
            return LastUp(copy.deepcopy(state.outputs), len(state.resources))

    def forget(self, stack_name: str) -> None:
        with self._lock:
            state = self._states.get(stack_name)
            if state is not None:
                state.fingerprint = None

    def save(self, stack_name: str, state: StackState) -> None:
        with self._lock:
            current = self._states.get(stack_name, StackState()).version
            if current != state.version:
                raise _conflict(stack_name)
            saved = copy.deepcopy(state)
            saved.version += 1
            self._states[stack_name] = saved

    def drop(self, stack_name: str, version: int) -> None:
        with self._lock:
            if self._states.get(stack_name, StackState()).version != version:
                raise _conflict(stack_name)
            self._states.pop(stack_name, None)


class PostgresStore:
    def __init__(self, session_scope: Callable[[], AbstractContextManager[Session]] | None = None):
        if session_scope is None:
            from database.session import session_scope as default_scope

            session_scope = default_scope
        self._scope = session_scope

    def load(self, stack_name: str) -> StackState:
        with self._scope() as session:
            row = session.get(SandboxStack, stack_name)
            if row is None:
                return StackState()
            return StackState(
                version=row.version,
                next_id=row.next_id,
                resources=dict(row.resources),
                outputs=dict(row.outputs),
                fingerprint=row.fingerprint,
            )

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        resources = func.coalesce(
            select(func.count())
            .select_from(func.jsonb_object_keys(SandboxStack.resources))
            .scalar_subquery(),
            0,
        )
        with self._scope() as session:
            row = session.execute(
                select(SandboxStack.outputs, resources)
                .where(SandboxStack.stack_name == stack_name)
                .where(SandboxStack.fingerprint == fingerprint)
            ).first()
        return None if row is None else LastUp(dict(row[0]), int(row[1]))

    def forget(self, stack_name: str) -> None:
        with self._scope() as session:
            session.execute(
                update(SandboxStack)
                .where(SandboxStack.stack_name == stack_name)
                .where(SandboxStack.fingerprint.is_not(None))
                .values(fingerprint=None)
            )

    def save(self, stack_name: str, state: StackState) -> None:
        values = {
            "version": state.version + 1,
            "next_id": state.next_id,
            "resources": state.resources,
            "outputs": state.outputs,
            "fingerprint": state.fingerprint,
        }
        with self._scope() as session:
            if state.version == 0:
                exists = session.scalar(
                    select(SandboxStack.version).where(SandboxStack.stack_name == stack_name)
                )
                if exists is not None:
                    raise _conflict(stack_name)
                # ON CONFLICT would hide a racing first run; a duplicate key is the conflict.
                from sqlalchemy.exc import IntegrityError

                try:
                    with session.begin_nested():
                        session.execute(
                            insert(SandboxStack).values(stack_name=stack_name, **values)
                        )
                except IntegrityError:
                    raise _conflict(stack_name) from None
                return
            result = session.execute(
                update(SandboxStack)
                .where(SandboxStack.stack_name == stack_name)
                .where(SandboxStack.version == state.version)
                .values(**values)
            )
            if getattr(result, "rowcount", 0) != 1:
                raise _conflict(stack_name)

    def drop(self, stack_name: str, version: int) -> None:
        with self._scope() as session:
            session.execute(
                delete(SandboxStack)
                .where(SandboxStack.stack_name == stack_name)
                .where(SandboxStack.version == version)
            )
