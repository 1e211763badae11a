"""`LiveEngine`: the real Pulumi CLI through `pulumi.automation`.

- One `LocalWorkspace` per stack, with its own work dir and its own options object (the SDK mutates
  the options it is given, and parallel create/select in one directory corrupts it: pulumi#8186).
  Runs of one stack are serialised by a lock here; across processes the backend's own stack lock
  answers `ConcurrentUpdateError`, which becomes `StackLocked` (transient).
- The program is `stacks.program.fleet` run inline, fed from the stack config exactly as
  `pulumi preview` by hand would be (project `penguinmails`, same keys).
- State: a file backend in DATA_DIR/pulumi/state unless a backend URL is set; secrets: the
  passphrase provider, the passphrase passed in the environment, never as an argument.
- Config: plain keys through `set_all_config`; secret keys one by one through
  `pulumi config set --secret` reading the value from stdin, so no secret is ever on a command line.
- Plugins: pinned, installed once per process before the first run (parallel installs into one
  PULUMI_HOME interfere: pulumi#22784).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from automation.engine import OPS, EventCallback, ResourceChange, StackResult, summarize
from automation.errors import (
    EngineError,
    ProviderError,
    PulumiNotInstalled,
    StackConfigError,
    StackLocked,
)
from stacks.config import NS, FleetConfig

PROJECT = "penguinmails"
_CONFIG_KEY = re.compile(r"(penguinmails:[A-Za-z]+(?:\[[^\]]*\])*(?:\.[A-Za-z]+)?)")
_PERMANENT = re.compile(r"unauthori[sz]ed|forbidden|invalid|not supported|quota exceeded", re.I)
_plugins_lock = threading.Lock()
_plugins_installed: set[str] = set()


def default_plugins() -> dict[str, str]:
    pins = {}
    for plugin, dist in (("hcloud", "pulumi_hcloud"), ("command", "pulumi_command")):
        try:
            pins[plugin] = "v" + version(dist)
        except PackageNotFoundError:  # pragma: no cover - both are dependencies
            continue
    return pins


class LiveEngine:
    name = "live"

    def __init__(
        self,
        *,
        command: str | None = None,
        backend_url: str | None = None,
        passphrase: str | None = None,
        pulumi_home: Path | None = None,
        work_root: Path | None = None,
        plugins: dict[str, str] | None = None,
        program: Callable[[], Any] | None = None,
    ) -> None:
        from settings import get_settings

        s = get_settings()
        data = Path(s.data_dir).resolve() / "pulumi"
        self.command = command or s.pulumi_command
        self.backend_url = (
            backend_url
            or s.pulumi_backend_url
            or os.environ.get("PULUMI_BACKEND_URL")
            or (data / "state").as_uri()
        )
        if passphrase is None and s.pulumi_config_passphrase is not None:
            passphrase = s.pulumi_config_passphrase.get_secret_value()
        self._passphrase = passphrase
        self.pulumi_home = Path(pulumi_home or s.pulumi_home or data / "home")
        self.work_root = Path(work_root or s.pulumi_work_root or data / "workspaces")
        if plugins is None and s.pulumi_plugins:
            plugins = dict(
                p.strip().split("=", 1) for p in s.pulumi_plugins.split(",") if p.strip()
            )
        self.plugins = plugins if plugins is not None else default_plugins()
        self._program = program
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # Plumbing ----------------------------------------------------------------------------------

    @property
    def passphrase(self) -> str:
        if self._passphrase is None:
            from kit.secret_key import resolve_secret_key
            from settings import get_settings

            key = resolve_secret_key(get_settings())
            self._passphrase = hashlib.sha256(b"penguinmails-pulumi:" + key.encode()).hexdigest()
        return self._passphrase

    def _pulumi_path(self) -> str:
        found = shutil.which(self.command)
        if found is None:
            raise PulumiNotInstalled(self.command)
        return found

    def env(self) -> dict[str, str]:
        return {
            "PULUMI_BACKEND_URL": self.backend_url,
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_HOME": str(self.pulumi_home),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Dynamic providers (DNS records, Hostwinds) run in a Python the engine starts: this
            # service's own interpreter, so `stacks` and `dnspublish` import there.
            "PULUMI_PYTHON_CMD": sys.executable,
        }

    def _lock(self, stack_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(stack_name, threading.Lock())

    def _program_fn(self) -> Callable[[], Any]:
        if self._program is not None:
            return self._program

        def program() -> None:
            from stacks.program import fleet

            fleet(FleetConfig.from_pulumi())

        return program

    def _stack(self, stack_name: str) -> Any:
        from pulumi import automation as auto

        pulumi_path = Path(self._pulumi_path())
        work_dir = self.work_root / stack_name
        work_dir.mkdir(parents=True, exist_ok=True)
        self.pulumi_home.mkdir(parents=True, exist_ok=True)
        if self.backend_url.startswith("file://"):
            Path(self.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        root = str(pulumi_path.parent.parent) if pulumi_path.parent.name == "bin" else None
        try:
            cli = auto.PulumiCommand(root=root)
            opts = auto.LocalWorkspaceOptions(  # a fresh options object per stack and call
                work_dir=str(work_dir),
                pulumi_home=str(self.pulumi_home),
                env_vars=self.env(),
                secrets_provider="passphrase",
                pulumi_command=cli,
                project_settings=auto.ProjectSettings(
                    name=PROJECT,
                    runtime="python",
                    backend=auto.ProjectBackend(url=self.backend_url),
                ),
            )
            stack = auto.create_or_select_stack(
                stack_name, project_name=PROJECT, program=self._program_fn(), opts=opts
            )
        except FileNotFoundError as exc:
            raise PulumiNotInstalled(self.command) from exc
        except auto.errors.CommandError as exc:
            raise _translate(exc) from exc
        self._install_plugins(stack)
        return stack

    def _install_plugins(self, stack: Any) -> None:
        with _plugins_lock:
            for plugin, pinned in sorted(self.plugins.items()):
                key = f"{self.pulumi_home}:{plugin}:{pinned}"
                if key in _plugins_installed:
                    continue
                stack.workspace.install_plugin(plugin, pinned)
                _plugins_installed.add(key)

    def _set_config(self, stack: Any, config: FleetConfig) -> None:
        from pulumi import automation as auto

        wanted = config.to_stack_config()
        current = stack.get_all_config()
        stale = [k for k in current if k.startswith(f"{NS}:") and k not in wanted]
        if stale:
            stack.remove_all_config(stale)
        plain = {
            k: auto.ConfigValue(value=v.value)
            for k, v in wanted.items()
            if not v.secret and (k not in current or current[k].value != v.value)
        }
        if plain:
            stack.set_all_config(plain)
        for key, value in wanted.items():
            if value.secret and (
                key not in current or not current[key].secret or current[key].value != value.value
            ):
                self._set_secret(stack.name, key, value.value)

    def _set_secret(self, stack_name: str, key: str, value: str) -> None:
        # The value goes on stdin: `pulumi config set` reads it from there when not given.
        done = subprocess.run(
            [self._pulumi_path(), "config", "set", "--secret", "--stack", stack_name, key],
            input=value.encode(),
            cwd=self.work_root / stack_name,
            env={**os.environ, **self.env(), "PULUMI_AUTOMATION_API": "true"},
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace")[-500:]
            raise EngineError(f"setting secret config {key} failed: {reason}", field=key)

    # The Engine interface ------------------------------------------------------------------------

    def preview(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._run("preview", stack_name, config, on_event)

    def up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._run("up", stack_name, config, on_event)

    def refresh(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._run("refresh", stack_name, config, on_event)

    def destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._run("destroy", stack_name, config, on_event)

    def outputs(self, stack_name: str) -> dict[str, Any]:
        from pulumi import automation as auto

        with self._lock(stack_name):
            stack = self._stack(stack_name)
            try:
                return {k: v.value for k, v in stack.outputs().items()}
            except auto.errors.CommandError as exc:
                raise _translate(exc) from exc

    def _run(
        self, kind: str, stack_name: str, config: FleetConfig, on_event: EventCallback | None
    ) -> StackResult:
        from pulumi import automation as auto

        result = StackResult()
        recorder = _Recorder(result, on_event)
        with self._lock(stack_name):
            stack = self._stack(stack_name)
            try:
                self._set_config(stack, config)
                common = {
                    "on_output": recorder.output,
                    "on_event": recorder.event,
                    "color": "never",
                }
                if kind == "preview":
                    preview = stack.preview(diff=False, **common)
                    counts = dict(preview.change_summary)
                elif kind == "up":
                    counts = dict(stack.up(**common).summary.resource_changes or {})
                elif kind == "refresh":
                    counts = dict(
                        stack.refresh(clear_pending_creates=True, **common).summary.resource_changes
                        or {}
                    )
                else:
                    counts = dict(stack.destroy(**common).summary.resource_changes or {})
                outputs = {} if kind == "destroy" else stack.outputs()
            except auto.errors.CommandError as exc:
                raise _translate(exc) from exc
        result.outputs = {k: v.value for k, v in outputs.items()}
        summary = summarize(result.changes, int(counts.get("same", 0)))
        for op in OPS:  # the engine's own counts win where they disagree with the event stream
            if op in counts:
                summary[op] = int(counts[op])
        result.summary = summary
        return result


class _Recorder:
    """Turns engine events into ResourceChanges and human-readable lines."""

    def __init__(self, result: StackResult, on_event: EventCallback | None) -> None:
        self.result = result
        self.on_event = on_event

    def _line(self, text: str) -> None:
        self.result.log.append(text)
        if self.on_event is not None:
            self.on_event(text)

    def output(self, text: str) -> None:
        text = text.rstrip()
        if text:
            self.result.log.append(text)

    def event(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None:
            meta = pre.metadata
            op = str(getattr(meta.op, "value", meta.op))
            op = {"create-replacement": "replace"}.get(op, op)
            name = meta.urn.rsplit("::", 1)[-1]
            if op in OPS and meta.type != "pulumi:pulumi:Stack":
                change = ResourceChange(op, meta.type, name)
                if change not in self.result.changes:
                    self.result.changes.append(change)
                    self._line(f"{op} {meta.type} {name}")
            return
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity in ("warning", "error"):
            self._line(f"{diag.severity}: {diag.message.strip()}")
            return
        summary = getattr(event, "summary_event", None)
        if summary is not None:
            counts = ", ".join(f"{n} {op}" for op, n in (summary.resource_changes or {}).items())
            self._line(f"done in {summary.duration_seconds}s: {counts or 'no changes'}")


def _translate(exc: Exception) -> EngineError:
    from pulumi import automation as auto

    text = str(exc)
    tail = text[-1500:]
    if isinstance(exc, auto.errors.ConcurrentUpdateError):
        return StackLocked("another update is running on this stack; try again later")
    if isinstance(exc, auto.errors.StackNotFoundError):
        return EngineError("the stack does not exist in the backend", transient=False)
    key = _CONFIG_KEY.search(text)
    if key and "ConfigError" in text:
        return StackConfigError(f"stack config error: {tail}", field=key.group(1))
    return ProviderError(f"pulumi failed: {tail}", transient=not _PERMANENT.search(text))
