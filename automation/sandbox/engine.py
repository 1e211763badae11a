"""`SandboxEngine`: the `stacks/` program under Pulumi's mock runtime.

Concurrency, measured: two mocked programs running at once in one process hang (the runtime
keeps per-program state in module globals next to its context variables), while runs one after
another each in a fresh thread are fine. So every evaluation runs in its own new thread (a fresh
context and event loop) under one process-wide lock; callers on different stacks may call from any
number of threads and simply queue for the evaluation, which takes milliseconds per resource.
Different processes and machines run in parallel: their only shared state is Postgres."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any

from automation import unchanged
from automation.collector import paused
from automation.engine import EventCallback, ResourceChange, StackResult, summarize
from automation.errors import EngineError, StackConfigError
from automation.sandbox.simulate import DNS_RECORD, AddressPool, SimulatedCloud, Step, rank
from automation.sandbox.state import MemoryStore, PostgresStore, StackState, StateStore
from stacks.config import ConfigError, FleetConfig, validate_pin_changes

if TYPE_CHECKING:
    from pulumi.runtime import Mocks

PROJECT = "penguinmails"
_EVALUATION = threading.Lock()


def _default_digest_key() -> bytes:
    from kit.secret_key import resolve_secret_key
    from settings import get_settings

    return hashlib.sha256(
        b"penguinmails-sandbox:" + resolve_secret_key(get_settings()).encode()
    ).digest()


class SandboxEngine:
    name = "sandbox"

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        ipv4_ranges: list[str] | None = None,
        ipv6_range: str | None = None,
        digest_key: bytes | None = None,
        program_version: str | None = None,
    ) -> None:
        if ipv4_ranges is None or ipv6_range is None:
            from settings import get_settings

            settings = get_settings()
            ipv4_ranges = ipv4_ranges or settings.sandbox_ipv4_ranges.split(",")
            ipv6_range = ipv6_range or settings.sandbox_ipv6_range
        self.store: StateStore = store if store is not None else PostgresStore()
        self.ipv4_ranges = ipv4_ranges
        self.ipv6_range = ipv6_range
        self._digest_key = digest_key
        self._program_version = program_version
        self.dns_timeout = 3.0

    @classmethod
    def in_memory(cls, **kwargs: Any) -> SandboxEngine:
        return cls(MemoryStore(), digest_key=b"in-memory", **kwargs)

    @property
    def digest_key(self) -> bytes:
        if self._digest_key is None:
            self._digest_key = _default_digest_key()
        return self._digest_key

    # The Engine interface --------------------------------------------------------------------

    def preview(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._evaluate(stack_name, config, on_event, save=False)

    def up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        with self.store.locked(stack_name):
            return self._up(stack_name, config, on_event)

    def _up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None
    ) -> StackResult:
        fingerprint = self.fingerprint(config)
        last = self.store.unchanged(stack_name, fingerprint)
        if last is not None:
            return unchanged.skipped("up", last.outputs, last.resources, on_event)
        # Forgotten first: a run that fails from here on may have published DNS records.
        self.store.forget(stack_name)
        return self._evaluate(stack_name, config, on_event, save=True, fingerprint=fingerprint)

    def fingerprint(self, config: FleetConfig) -> str:
        program = self._program_version or unchanged.program_version()
        return unchanged.fingerprint(config, self.digest_key, program)

    def refresh(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        with self.store.locked(stack_name):
            return self._refresh(stack_name, on_event)

    def _refresh(self, stack_name: str, on_event: EventCallback | None) -> StackResult:
        # Simulated resources never drift: a refresh finds everything as it was. It still
        # forgets the fingerprint, so "refresh, then up" runs the program, as with live stacks.
        self.store.forget(stack_name)
        state = self.store.load(stack_name)
        result = StackResult(summary=summarize([], len(state.resources)), outputs=state.outputs)
        _emit(result, on_event, f"refresh: {len(state.resources)} resources unchanged")
        return result

    def destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        with self.store.locked(stack_name):
            return self._destroy(stack_name, config, on_event)

    def _destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None
    ) -> StackResult:
        state = self.store.load(stack_name)
        changes = [
            ResourceChange("delete", r["type"], r["name"])
            for r in sorted(
                state.resources.values(), key=lambda r: rank(r["type"], r["name"]), reverse=True
            )
        ]
        result = StackResult(changes=changes, summary=summarize(changes, 0), outputs={})
        for change in changes:
            _emit(result, on_event, f"- {change.op} {change.type} {change.name}")
        for line in _unpublish(list(state.resources.values()), config, self.dns_timeout)[1]:
            _emit(result, on_event, line)
        if state.version:
            self.store.drop(stack_name, state.version)
        _emit(result, on_event, f"destroy: {len(changes)} deleted")
        return result

    def outputs(self, stack_name: str) -> dict[str, Any]:
        return self.store.load(stack_name).outputs

    # The run -----------------------------------------------------------------------------------

    def _evaluate(
        self,
        stack_name: str,
        config: FleetConfig,
        on_event: EventCallback | None,
        *,
        save: bool,
        fingerprint: str | None = None,
    ) -> StackResult:
        prior = self.store.load(stack_name)  # its own short transaction, closed before the run
        _check_pins(config, prior)
        cloud = SimulatedCloud(
            stack_name=stack_name,
            prior=prior,
            digest_key=self.digest_key,
            pool=AddressPool(self.ipv4_ranges, self.ipv6_range, _taken_addresses(prior)),
            next_id=prior.next_id,
            publish=save,
            dns_timeout=self.dns_timeout,
        )
        started = time.perf_counter()
        outputs = run_program(stack_name, config, cloud)
        elapsed = time.perf_counter() - started

        kept = [cloud.resources[k] for k in cloud.resources]
        steps, changes, gone = _changes(prior, cloud)
        unpublish_log: list[str] = []
        if save:
            # Our records of what the run no longer declares come out of the zone; one that
            # cannot be removed now stays in the state, so the next run tries again.
            kept_back, unpublish_log = _unpublish(gone, config, self.dns_timeout)
            kept += kept_back
        same = sum(1 for s in steps if s.op == "same")
        result = StackResult(changes=changes, summary=summarize(changes, same), outputs=outputs)
        _emit_changes(result, on_event, unpublish_log)
        if save:
            self.store.save(
                stack_name,
                StackState(
                    version=prior.version,
                    next_id=cloud.next_id,
                    resources={f"{r['type']}::{r['name']}": r for r in kept},
                    outputs=outputs,
                    # Only a run that left nothing to retry lets the next one be skipped.
                    fingerprint=fingerprint
                    if len(kept) == len(cloud.resources) and unchanged.settled(outputs)
                    else None,
                ),
            )
        verb = "up" if save else "preview"
        _emit(result, on_event, _summary_line(verb, len(kept), elapsed, result.summary))
        return result


def _check_pins(config: FleetConfig, prior: StackState) -> None:
    """Refuse pin changes against the servers the last run saw, as a stack config error."""
    try:
        validate_pin_changes(config, prior.outputs.get("servers"))
    except ConfigError as exc:
        raise StackConfigError(str(exc), field=exc.key) from exc


def _taken_addresses(prior: StackState) -> set[str]:
    """Addresses the stack's resources already hold, so the pool hands out no duplicate."""
    return {
        str(v)
        for r in prior.resources.values()
        for k, v in r.get("outputs", {}).items()
        if k in ("ipv4Address", "ipv6Address", "main_ip", "ipv6")
    }


def _changes(
    prior: StackState, cloud: SimulatedCloud
) -> tuple[list[Step], list[ResourceChange], list[dict[str, Any]]]:
    """The run's steps in dependency order, the changes they make (deletions last, in reverse
    order, for what the prior state had and the run no longer declares) and those gone ones."""
    steps = sorted(cloud.steps, key=lambda s: rank(s.type, s.name))
    changes = [ResourceChange(s.op, s.type, s.name) for s in steps if s.op != "same"]  # type: ignore[arg-type]
    gone = sorted(
        (r for k, r in prior.resources.items() if k not in cloud.resources),
        key=lambda r: rank(r["type"], r["name"]),
        reverse=True,
    )
    changes += [ResourceChange("delete", r["type"], r["name"]) for r in gone]
    return steps, changes, gone


def _summary_line(verb: str, resources: int, elapsed: float, summary: dict[str, int]) -> str:
    counts = ", ".join(f"{n} {op}" for op, n in summary.items() if n)
    return f"{verb}: {resources} resources evaluated in {elapsed:.2f}s ({counts or 'nothing'})"


def _emit_changes(
    result: StackResult, on_event: EventCallback | None, unpublish_log: list[str]
) -> None:
    for change in result.changes:
        mark = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}[change.op]
        _emit(result, on_event, f"{mark} {change.op} {change.type} {change.name}")
    for line in unpublish_log:
        _emit(result, on_event, line)


def _unpublish(
    resources: list[dict[str, Any]], config: FleetConfig, timeout: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """Remove the DNS records among `resources` from their zones, with the credentials of
    their connection in `config`. Returns the ones that could not be removed, and a log."""
    from dnspublish.backends import PublishError
    from stacks import dns

    credentials = {c.id: dict(c.credentials) for c in config.dns_connections}
    failed: list[dict[str, Any]] = []
    log: list[str] = []
    for resource in resources:
        if resource["type"] != DNS_RECORD:
            continue
        outputs = resource.get("outputs", {})
        connection = str(outputs.get("connection_id", ""))
        if outputs.get("status") != "published":
            continue
        if connection not in credentials:
            log.append(f"dns: {resource['name']}: its connection is gone; left in the zone")
            continue
        try:
            done = dns.remove(outputs, credentials[connection], timeout=timeout)
            log.append(f"dns: {resource['name']}: {done}")
        except PublishError as exc:
            failed.append(resource)
            log.append(f"dns: {resource['name']}: could not remove, tried again next run: {exc}")
    return failed, log


def _emit(result: StackResult, on_event: EventCallback | None, line: str) -> None:
    result.log.append(line)
    if on_event is not None:
        on_event(line)


def run_program(stack_name: str, config: FleetConfig, cloud: Mocks) -> dict[str, Any]:
    """Evaluate the fleet program against `cloud` (any Mocks; a `SimulatedCloud` here) in a
    fresh thread, one evaluation per process at a time; return the program's outputs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["outputs"] = _evaluate_in_thread(stack_name, config, cloud)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    # The collector is paused for the thread's whole life: its one collection after then finds
    # the run's resource graph as garbage (the thread's context held it) instead of walking it
    # alive and leaving it to a later full collection.
    with _EVALUATION, paused():
        thread = threading.Thread(target=target, name=f"sandbox-{stack_name}", daemon=True)
        thread.start()
        thread.join()
    error = box.get("error")
    if isinstance(error, ConfigError):
        raise StackConfigError(str(error), field=error.key) from error
    errors: list[str] = getattr(cloud, "errors", [])
    if errors:
        raise EngineError("sandbox evaluation failed: " + "; ".join(errors[:3]))
    if error is not None:
        raise EngineError(f"the stack program failed: {error}") from error
    outputs: dict[str, Any] = box["outputs"]
    return outputs


class _Slot(int):
    """Where the n-th Output of a captured structure goes."""


def _capture(outputs: dict[str, Any], into: dict[str, Any]) -> None:
    """Resolve the program's outputs into `into`: one `Output.all` over every Output in the
    nested structure, filled back in one `apply`. `Output.from_input` on the structure made
    an Output (and a task) of every plain key and value and two `Output.all`s per dict, about
    30 per mailbox: a large share of a fleet's evaluation (issue 16's profile)."""
    import pulumi

    leaves: list[pulumi.Output[Any]] = []

    def template(value: Any) -> Any:
        if isinstance(value, pulumi.Output):
            leaves.append(value)
            return _Slot(len(leaves) - 1)
        if isinstance(value, dict):
            return {k: template(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [template(v) for v in value]
        return value

    def fill(value: Any, resolved: list[Any]) -> Any:
        if isinstance(value, _Slot):
            return resolved[value]
        if isinstance(value, dict):
            return {k: fill(v, resolved) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v, resolved) for v in value]
        return value

    shape = template(outputs)
    pulumi.Output.all(*leaves).apply(lambda resolved: into.update(fill(shape, list(resolved))))


def _evaluate_in_thread(stack_name: str, config: FleetConfig, cloud: Mocks) -> dict[str, Any]:
    import asyncio

    from pulumi.runtime import set_all_config, set_mocks
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from stacks.program import fleet

    asyncio.set_event_loop(asyncio.new_event_loop())
    # Through stack config and back, exactly as `pulumi up` feeds the program.
    rendered = config.to_stack_config()
    set_all_config(
        {k: v.value for k, v in rendered.items()}, [k for k, v in rendered.items() if v.secret]
    )
    set_mocks(cloud, project=PROJECT, stack=stack_name, preview=False)
    captured: dict[str, Any] = {}

    def program() -> None:
        _capture(fleet(FleetConfig.from_pulumi()), captured)

    # The runtime's set of outstanding outputs is one per process, not per context: a failed
    # program leaves its tasks in it, bound to its closed loop, and the next evaluation in this
    # process would wait on them and fail with "Event loop is closed".
    with SETTINGS.lock:
        SETTINGS.outputs.clear()
    try:
        _sync_await(run_pulumi_func(program))
    finally:
        asyncio.get_event_loop().close()
    return captured
