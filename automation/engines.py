"""The one way to get a workspace's engine: `sandbox` or `live` by its `sandbox` flag, with the
operator's overrides applied (`PENGUINMAILS_ENGINE_OVERRIDE=noop` for benchmarks, simulated
provider time for sandbox runs). The queue, the CLI and the fault harness all use this."""

from automation.delayed import DelayedEngine
from automation.engine import Engine, NoopEngine
from database.models.workspaces import Workspace
from settings import Settings, get_settings

_engines: dict[str, Engine] = {}


def _base(kind: str) -> Engine:
    if kind not in _engines:
        if kind == "sandbox":
            from automation.sandbox.engine import SandboxEngine

            _engines[kind] = SandboxEngine()
        else:
            from automation.live import LiveEngine

            _engines[kind] = LiveEngine()
    return _engines[kind]


def engine_for(workspace: Workspace, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    if settings.engine_override == "noop":
        return NoopEngine()
    engine = _base("sandbox" if workspace.sandbox else "live")
    if workspace.sandbox and settings.sandbox_latency_seconds > 0:
        return DelayedEngine(engine, settings.sandbox_latency_seconds)
    return engine
