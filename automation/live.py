"""`LiveEngine`: the real Pulumi CLI through `pulumi.automation`.

- One `LocalWorkspace` per stack, with its own work dir and its own options object (the SDK mutates
  the options it is given, and parallel create/select in one directory corrupts it: pulumi#8186).
  Runs of one stack are serialised by a lock here; across processes the backend's own stack lock
  answers `ConcurrentUpdateError`, which becomes `StackLocked` (transient).
- The program is `stacks.program.fleet` run inline, fed from the stack config exactly as
  `pulumi preview` by hand would be (project `penguinmails`, same keys).
- State: `domain.hosts.backends.resolve` (a set backend URL; else, with DATABASE_URL, that
  Postgres through Pulumi's postgres backend; else a file backend in DATA_DIR/pulumi/state),
  given to the CLI as PULUMI_BACKEND_URL; secrets: the passphrase provider, the passphrase
  passed in the environment, never as an argument.
- Config: plain keys through `set_all_config`; secret keys one by one through
  `pulumi config set --secret` reading the value from stdin, so no secret is ever on a command line.
- An unchanged `up` (same config, program, backend and plugins as the stack's last successful
  one) is skipped without starting the CLI (automation/unchanged.py, `live_stacks`).
- Plugins: pinned, installed once per host (the worker does it at start) into this host's own
  PULUMI_HOME under DATA_DIR/pulumi/hosts/HOST, under a file lock: parallel installs into one
  PULUMI_HOME interfere (pulumi#22784).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from automation import unchanged
from automation.collector import held
from automation.engine import OPS, EventCallback, ResourceChange, StackResult, summarize
from automation.errors import (
    EngineError,
    ProviderError,
    PulumiNotInstalled,
    StackConfigError,
    StackLocked,
)
from automation.live_state import LiveRuns, PostgresLiveRuns
from domain.hosts.backends import Backend, host_dir, resolve
from settings import Settings
from stacks.config import NS, FleetConfig
from stacks.plugins import default_plugins, parse_plugins

PROJECT = "penguinmails"
_CONFIG_KEY = re.compile(r"(penguinmails:[A-Za-z]+(?:\[[^\]]*\])*(?:\.[A-Za-z]+)?)")
_PERMANENT = re.compile(r"unauthori[sz]ed|forbidden|invalid|not supported|quota exceeded", re.I)
_plugins_lock = threading.Lock()
_plugins_installed: set[str] = set()


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
        settings: Settings | None = None,
        backend: Backend | None = None,
        runs: LiveRuns | None = None,
        program_version: str | None = None,
    ) -> None:
        from settings import get_settings

        s = settings or get_settings()
        self._settings = s
        here = host_dir(s)
        self.command = command or s.pulumi_command
        if backend is None:
            backend = Backend(backend_url, "argument") if backend_url else resolve(s)
        self.backend = backend
        if passphrase is None and s.pulumi_config_passphrase is not None:
            passphrase = s.pulumi_config_passphrase.get_secret_value()
        self._passphrase = passphrase
        self.pulumi_home = Path(pulumi_home or s.pulumi_home or here / "home")
        self.work_root = Path(work_root or s.pulumi_work_root or here / "workspaces")
        if plugins is None:
            plugins = parse_plugins(s.pulumi_plugins)
        self.plugins = plugins if plugins is not None else default_plugins()
        self._program = program
        # Where the last successful `up` is remembered, so an unchanged one is skipped without
        # starting the CLI; without a database nothing is remembered and every `up` runs. The
        # fingerprint describes `stacks.program.fleet`: an engine given another program skips
        # nothing unless it is also given where to remember.
        if runs is None and s.database_url and program is None:
            runs = PostgresLiveRuns()
        self.runs = runs
        self._program_version = program_version
        self._locks: dict[str, threading.Lock] = {}
        self._secret_outputs: dict[str, bool] = {}
        self._locks_guard = threading.Lock()

    @property
    def backend_url(self) -> str:
        return self.backend.url

    # Plumbing ----------------------------------------------------------------------------------

    @property
    def passphrase(self) -> str:
        if self._passphrase is None:
            from kit.secret_key import resolve_secret_key

            key = resolve_secret_key(self._settings)
            self._passphrase = hashlib.sha256(b"penguinmails-pulumi:" + key.encode()).hexdigest()
        return self._passphrase

    def _pulumi_path(self) -> str:
        found = shutil.which(self.command)
        if found is None:
            raise PulumiNotInstalled(self.command)
        return found

    def env(self) -> dict[str, str]:
        """The CLI's environment beside os.environ: the backend (and its password, for a
        backend derived from DATABASE_URL, as PGPASSWORD), the passphrase, this host's home."""
        return {
            **self.backend.env,
            "PULUMI_BACKEND_URL": self.backend_url,
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_HOME": str(self.pulumi_home),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Dynamic providers (DNS records, Hostwinds) run in `${PULUMI_PYTHON_CMD:-python3}
            # -m pulumi.dynamic` (pulumi-resource-pulumi-python) and must import `pulumi`,
            # `stacks` and `dnspublish`: this interpreter can, whatever is first on PATH
            # (pulumi/pulumi#7960).
            "PULUMI_PYTHON_CMD": sys.executable,
        }

    def _lock(self, stack_name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(stack_name, threading.Lock())

    def _program_fn(self) -> Callable[[], Any]:
        if self._program is not None:
            return held(self._program)

        def program() -> None:
            from stacks.program import fleet

            fleet(FleetConfig.from_pulumi())

        # Declaring the resources, with the collector paused (automation/collector.py); what
        # follows waits on the providers, where the collector's cost does not show.
        return held(program)

    def fingerprint(self, config: FleetConfig) -> str:
        """The `up`'s fingerprint (automation/unchanged.py), with what else decides its outcome
        here: the backend holding the state and the pinned plugins."""
        key = hashlib.sha256(b"penguinmails-live-fingerprint:" + self.passphrase.encode())
        extra = json.dumps({"backend": self.backend_url, "plugins": self.plugins}, sort_keys=True)
        program = self._program_version or unchanged.program_version()
        return unchanged.fingerprint(config, key.digest(), program, extra)

    def _stack(self, stack_name: str) -> Any:
        from pulumi import automation as auto

        pulumi_path = Path(self._pulumi_path())
        work_dir = self.work_root / stack_name
        work_dir.mkdir(parents=True, exist_ok=True)
        self.pulumi_home.mkdir(parents=True, exist_ok=True)
        if self.backend.path is not None:
            self.backend.path.mkdir(parents=True, exist_ok=True)
        root = str(pulumi_path.parent.parent) if pulumi_path.parent.name == "bin" else None
        try:
            cli = auto.PulumiCommand(root=root)
            opts = auto.LocalWorkspaceOptions(  # a fresh options object per stack and call
                work_dir=str(work_dir),
                pulumi_home=str(self.pulumi_home),
                env_vars=self.env(),
                secrets_provider="passphrase",
                pulumi_command=cli,
                # The backend comes from PULUMI_BACKEND_URL in env_vars, not the project file,
                # so nothing of it is written into the work dir.
                project_settings=auto.ProjectSettings(name=PROJECT, runtime="python"),
            )
            stack = auto.create_or_select_stack(
                stack_name, project_name=PROJECT, program=self._program_fn(), opts=opts
            )
        except FileNotFoundError as exc:
            raise PulumiNotInstalled(self.command) from exc
        except auto.errors.CommandError as exc:
            raise self._translate(exc) from exc
        self.install_plugins()
        return stack

    def _translate(self, exc: Exception) -> EngineError:
        return _translate(exc, secrets=self.backend.env.values())

    def _scrub(self, text: str) -> str:
        return scrub(text, self.backend.env.values())

    def install_plugins(self) -> list[str]:
        """Install the pinned provider plugins into this host's PULUMI_HOME, once per host: the
        worker calls it at start; a run calls it again, which is then a no-op. Processes of one
        host take turns under a file lock (parallel installs into one home interfere,
        pulumi#22784) and skip what the marker file says is there. Returns what was installed."""
        marker = self.pulumi_home / "penguinmails-plugins.json"
        with _plugins_lock:
            if self.plugins and all(
                f"{self.pulumi_home}:{p}:{v}" in _plugins_installed for p, v in self.plugins.items()
            ):
                return []
            self.pulumi_home.mkdir(parents=True, exist_ok=True)
            installed: list[str] = []
            with open(self.pulumi_home / "plugins.lock", "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    done = json.loads(marker.read_text()) if marker.exists() else {}
                except ValueError:
                    done = {}
                for plugin, pinned in sorted(self.plugins.items()):
                    if done.get(plugin) != pinned:
                        self._plugin_install(plugin, pinned)
                        done[plugin] = pinned
                        marker.write_text(json.dumps(done, sort_keys=True))
                        installed.append(f"{plugin} {pinned}")
                    _plugins_installed.add(f"{self.pulumi_home}:{plugin}:{pinned}")
            return installed

    def _plugin_install(self, plugin: str, pinned: str) -> None:
        done = subprocess.run(
            [self._pulumi_path(), "plugin", "install", "resource", plugin, pinned],
            env={**os.environ, **self.env(), "PULUMI_AUTOMATION_API": "true"},
            capture_output=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            reason = self._scrub(done.stderr.decode(errors="replace"))[-500:]
            raise ProviderError(f"installing the {plugin} {pinned} plugin failed: {reason}")

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
            reason = self._scrub(done.stderr.decode(errors="replace"))[-500:]
            raise EngineError(f"setting secret config {key} failed: {reason}", field=key)

    # The Engine interface ------------------------------------------------------------------------

    def preview(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        return self._run("preview", stack_name, config, on_event)

    def up(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        if self.runs is None:
            return self._run("up", stack_name, config, on_event)
        fingerprint = self.fingerprint(config)
        last = self.runs.unchanged(stack_name, fingerprint)
        if last is not None:
            return unchanged.skipped("up", last.outputs, last.resources, on_event)
        # Forgotten first: a run that fails (or is killed) must not let the next one skip.
        self.runs.forget(stack_name)
        result = self._run("up", stack_name, config, on_event)
        if unchanged.settled(result.outputs) and not self._secret_outputs.get(stack_name):
            kept = ("same", "create", "update", "replace")
            resources = sum(int(result.summary.get(op, 0)) for op in kept)
            self.runs.remember(stack_name, fingerprint, result.outputs, resources)
        return result

    def refresh(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        # A refresh is how drift is looked for: the next `up` runs, whatever it finds.
        if self.runs is not None:
            self.runs.forget(stack_name)
        return self._run("refresh", stack_name, config, on_event)

    def destroy(
        self, stack_name: str, config: FleetConfig, on_event: EventCallback | None = None
    ) -> StackResult:
        if self.runs is not None:
            self.runs.forget(stack_name)
        return self._run("destroy", stack_name, config, on_event)

    def outputs(self, stack_name: str) -> dict[str, Any]:
        from pulumi import automation as auto

        with self._lock(stack_name):
            stack = self._stack(stack_name)
            try:
                return {k: v.value for k, v in stack.outputs().items()}
            except auto.errors.CommandError as exc:
                raise self._translate(exc) from exc

    def _run(
        self, kind: str, stack_name: str, config: FleetConfig, on_event: EventCallback | None
    ) -> StackResult:
        from pulumi import automation as auto

        result = StackResult()
        recorder = _Recorder(result, on_event)
        with self._lock(stack_name):
            stack = self._stack(stack_name)
            try:
                if kind in ("preview", "up"):
                    self._check_pins(stack, config)
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
                    counts = self._destroy(stack, common, recorder)
                outputs = {} if kind == "destroy" else stack.outputs()
            except auto.errors.CommandError as exc:
                raise self._translate(exc) from exc
        result.outputs = {k: v.value for k, v in outputs.items()}
        # Secret outputs are never copied into our tables: such a stack's `up` always runs.
        self._secret_outputs[stack_name] = any(v.secret for v in outputs.values())
        summary = summarize(result.changes, int(counts.get("same", 0)))
        for op in OPS:  # the engine's own counts win where they disagree with the event stream
            if op in counts:
                summary[op] = int(counts[op])
        result.summary = summary
        return result

    @staticmethod
    def _destroy(stack: Any, common: dict[str, Any], recorder: _Recorder) -> dict[str, Any]:
        """Destroy; resources that were never created are forgotten first (a failed first run
        leaves pending creates), and when the servers are already gone, the commands that can
        no longer reach them are dropped from state with a warning and the destroy finishes."""
        from pulumi import automation as auto

        stack.refresh(clear_pending_creates=True, **common)
        try:
            return dict(stack.destroy(**common).summary.resource_changes or {})
        except auto.errors.CommandError as exc:
            if not _UNREACHABLE.search(str(exc)):
                raise
        deployment = stack.export_stack()
        kept, dropped = drop_commands(dict(deployment.deployment or {}))
        if not dropped:
            raise EngineError("destroy failed and no command resource is left to drop")
        recorder._line(
            f"warning: the server is unreachable; dropping {len(dropped)} command resource(s) "
            f"from state without running their delete: {', '.join(dropped)}"
        )
        deployment.deployment = kept
        stack.import_stack(deployment)
        return dict(stack.destroy(**common).summary.resource_changes or {})

    @staticmethod
    def _check_pins(stack: Any, config: FleetConfig) -> None:
        from stacks.config import ConfigError, validate_pin_changes

        previous = stack.outputs().get("servers")
        try:
            validate_pin_changes(config, previous.value if previous is not None else None)
        except ConfigError as exc:
            raise StackConfigError(str(exc), field=exc.key) from exc


# pulumi-command's dial errors once dial_error_limit attempts failed (connection.go).
_UNREACHABLE = re.compile(
    r"dial tcp|unable to (?:dial|connect)|no route to host|connection refused|i/o timeout", re.I
)


def drop_commands(deployment: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The deployment without its `command:remote:Command` resources, and their names."""
    resources = list(deployment.get("resources") or [])
    dropped = [r.get("urn", "").rsplit("::", 1)[-1] for r in resources
               if r.get("type") == "command:remote:Command"]  # fmt: skip
    kept = [r for r in resources if r.get("type") != "command:remote:Command"]
    return {**deployment, "resources": kept}, dropped


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


def scrub(text: str, secrets: Iterable[str]) -> str:
    """The CLI may echo a connection string back: never keep a password in what we record."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _translate(exc: Exception, secrets: Iterable[str] = ()) -> EngineError:
    from pulumi import automation as auto

    text = scrub(str(exc), secrets)
    tail = text[-1500:]
    if isinstance(exc, auto.errors.ConcurrentUpdateError):
        return StackLocked("another update is running on this stack; try again later")
    if isinstance(exc, auto.errors.StackNotFoundError):
        return EngineError("the stack does not exist in the backend", transient=False)
    key = _CONFIG_KEY.search(text)
    if key and "ConfigError" in text:
        return StackConfigError(f"stack config error: {tail}", field=key.group(1))
    return ProviderError(f"pulumi failed: {tail}", transient=not _PERMANENT.search(text))
