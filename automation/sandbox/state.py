"""Where the sandbox engine keeps each stack between runs.

`PostgresStore` (the default) shares the state between processes and machines; every call is its
own short transaction and none is held across a run: the engine loads, runs the program, then
saves with a compare-and-set on `version`, so two writers of one stack cannot both win.
`MemoryStore` is for benchmarks and callers without a database.

`locked(stack)` is the stack lock, as Pulumi's backends take one for every update: held for a
whole `up`, `refresh` or `destroy`, refused at once (`StackLocked`, transient: the queue retries
later) while another run holds it. The compare-and-set alone let two runs of one stack both
execute (publishing DNS records, allocating addresses) and only one save: at a load average of
13 a worker's lease ran out mid-run and the operation's next worker ran the stack beside it.
In Postgres it is an advisory lock on a connection of its own (autocommit: no transaction is
held across the run); a process that dies drops its connection and with it the lock, so a
killed worker never leaves a stack locked (Pulumi's file lock would need `pulumi cancel`)."""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, text, update
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

    def locked(self, stack_name: str) -> AbstractContextManager[None]:
        """Held for a whole run; StackLocked at once while another run holds it."""
        ...


log = logging.getLogger(__name__)
# pg_try_advisory_lock(int, int): this class id, then 32 bits of the stack name's hash (two
# names sharing them only wait for each other's runs, never both run one stack).
_LOCK_CLASS = 0x50_4D_53_4B  # "PMSK"


def _lock_key(stack_name: str) -> int:
    return int.from_bytes(hashlib.sha256(stack_name.encode()).digest()[:4], "big", signed=True)


def _held(stack_name: str) -> StackLocked:
    return StackLocked(
        f"stack {stack_name} is being updated by another run; it is tried again later",
        stack=stack_name,
        held=True,  # refused before anything ran (a lost compare-and-set ran, then lost)
    )


def _conflict(stack_name: str) -> StackLocked:
    return StackLocked(
        f"stack {stack_name} was changed by another run meanwhile; run it again",
        stack=stack_name,
    )


class MemoryStore:
    def __init__(self) -> None:
        self._states: dict[str, StackState] = {}
        self._lock = threading.Lock()
        self._running: set[str] = set()

    @contextmanager
    def locked(self, stack_name: str) -> Iterator[None]:
        with self._lock:
            if stack_name in self._running:
                raise _held(stack_name)
            self._running.add(stack_name)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(stack_name)

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

    @contextmanager
    def locked(self, stack_name: str) -> Iterator[None]:
        from database.session import get_engine

        key = {"c": _LOCK_CLASS, "k": _lock_key(stack_name)}
        with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.scalar(
                text("SELECT pg_try_advisory_lock(CAST(:c AS integer), CAST(:k AS integer))"), key
            ):
                raise _held(stack_name)
            try:
                yield
            finally:
                try:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(CAST(:c AS integer), CAST(:k AS integer))"),
                        key,
                    )
                except Exception:  # the connection is gone, and the lock with it
                    log.warning("unlocking stack %s failed", stack_name, exc_info=True)
                    conn.invalidate()

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
