"""Where the live engine remembers a stack's last successful `up` (automation/unchanged.py):
its fingerprint and outputs, in the `live_stacks` table beside everything else the control
plane keeps, since the Pulumi state itself is the backend's. Every call is its own short
transaction, none held across a run. `MemoryLiveRuns` is for callers without a database."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from automation.unchanged import LastUp
from database.models.live_stacks import LiveStack


class LiveRuns(Protocol):
    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None: ...

    def forget(self, stack_name: str) -> None: ...

    def remember(
        self, stack_name: str, fingerprint: str, outputs: dict[str, Any], resources: int
    ) -> None: ...


class MemoryLiveRuns:
    def __init__(self) -> None:
        self._runs: dict[str, tuple[str, dict[str, Any], int]] = {}
        self._lock = threading.Lock()

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        with self._lock:
            run = self._runs.get(stack_name)
            if run is None or run[0] != fingerprint:
                return None
            return LastUp(copy.deepcopy(run[1]), run[2])

    def forget(self, stack_name: str) -> None:
        with self._lock:
            self._runs.pop(stack_name, None)

    def remember(
        self, stack_name: str, fingerprint: str, outputs: dict[str, Any], resources: int
    ) -> None:
        with self._lock:
            self._runs[stack_name] = (fingerprint, copy.deepcopy(outputs), resources)


class PostgresLiveRuns:
    def __init__(self, session_scope: Callable[[], AbstractContextManager[Session]] | None = None):
        if session_scope is None:
            from database.session import session_scope as default_scope

            session_scope = default_scope
        self._scope = session_scope

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        with self._scope() as session:
            row = session.execute(
                select(LiveStack.outputs, LiveStack.resources).where(
                    LiveStack.stack_name == stack_name, LiveStack.fingerprint == fingerprint
                )
            ).first()
        return None if row is None else LastUp(dict(row[0]), int(row[1]))

    def forget(self, stack_name: str) -> None:
        with self._scope() as session:
            session.execute(delete(LiveStack).where(LiveStack.stack_name == stack_name))

    def remember(
        self, stack_name: str, fingerprint: str, outputs: dict[str, Any], resources: int
    ) -> None:
        values = {"fingerprint": fingerprint, "outputs": outputs, "resources": resources}
        statement = insert(LiveStack).values(stack_name=stack_name, **values)
        with self._scope() as session:
            session.execute(
                statement.on_conflict_do_update(index_elements=[LiveStack.stack_name], set_=values)
            )
