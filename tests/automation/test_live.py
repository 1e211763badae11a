"""The live engine. Its real runs need the Pulumi CLI, which cannot be installed on our build
machines: those tests run where `pulumi` is on PATH and are skipped elsewhere with that reason.
What does not need the CLI (a missing CLI, error mapping, event translation) runs everywhere."""

import shutil
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult
from pulumi.automation.events import EngineEvent

from automation.engine import ResourceChange, StackResult
from automation.errors import ProviderError, PulumiNotInstalled, StackConfigError, StackLocked
from automation.live import LiveEngine, _Recorder, _translate, default_plugins
from stacks.config import FleetConfig

HAS_PULUMI = shutil.which("pulumi") is not None
needs_pulumi = pytest.mark.skipif(
    not HAS_PULUMI,
    reason="the Pulumi CLI is not on PATH (not installable on this build machine); "
    "install it from https://www.pulumi.com/docs/install/ to run the live engine tests",
)


def minimal_config() -> FleetConfig:
    return FleetConfig(workspace_id="ws-live-test", tenant_id="tenant-live-test")


def engine(tmp_path: Path, **kw: Any) -> LiveEngine:
    return LiveEngine(
        backend_url=(tmp_path / "state").as_uri(),
        passphrase="test-passphrase",
        pulumi_home=tmp_path / "home",
        work_root=tmp_path / "work",
        plugins={},
        **kw,
    )


def test_missing_cli_is_a_clear_permanent_error(tmp_path: Path) -> None:
    live = engine(tmp_path, command="pulumi-is-not-installed-here")
    with pytest.raises(PulumiNotInstalled) as err:
        live.preview("ws-x", minimal_config())
    assert "get.pulumi.com" in err.value.message
    assert "pulumi-is-not-installed-here" in err.value.message
    assert not err.value.transient


def _error(cls: type[auto.errors.CommandError], stderr: str) -> auto.errors.CommandError:
    return cls(CommandResult(stdout="", stderr=stderr, code=255))


def test_cli_errors_map_to_our_errors() -> None:
    locked = _translate(
        _error(
            auto.errors.ConcurrentUpdateError, "error: the stack is currently locked by 1 lock(s)"
        )
    )
    assert isinstance(locked, StackLocked) and locked.transient
    config = _translate(
        _error(
            auto.errors.CommandError,
            "stacks.config.ConfigError: penguinmails:servers[0].region: 'mars' is not offered",
        )
    )
    assert isinstance(config, StackConfigError)
    assert config.field == "penguinmails:servers[0].region" and not config.transient
    flaky = _translate(_error(auto.errors.CommandError, "error: dial tcp: i/o timeout"))
    assert isinstance(flaky, ProviderError) and flaky.transient
    refused = _translate(_error(auto.errors.CommandError, "error: hcloud: unauthorized (401)"))
    assert isinstance(refused, ProviderError) and not refused.transient


def test_engine_events_become_changes_and_lines() -> None:
    result = StackResult()
    lines: list[str] = []
    recorder = _Recorder(result, lines.append)
    for op, type_, name in (
        ("create", "hcloud:index/server:Server", "mx1"),
        ("same", "hcloud:index/sshKey:SshKey", "ssh-key"),
        ("create-replacement", "command:remote:Command", "mx1-stalwart"),
        ("replace", "command:remote:Command", "mx1-stalwart"),
        ("delete-replaced", "command:remote:Command", "mx1-stalwart"),
        ("delete", "hcloud:index/rdns:Rdns", "mx2-ptr-v4"),
    ):
        urn = f"urn:pulumi:ws::penguinmails::{type_}::{name}"
        recorder.event(
            EngineEvent.from_json(
                {
                    "sequence": 1,
                    "timestamp": 1,
                    "resourcePreEvent": {"metadata": {"op": op, "urn": urn, "type": type_}},
                }
            )
        )
    recorder.event(
        EngineEvent.from_json(
            {
                "sequence": 2,
                "timestamp": 2,
                "diagnosticEvent": {
                    "message": "careful\n",
                    "color": "never",
                    "severity": "warning",
                },
            }
        )
    )
    assert result.changes == [
        ResourceChange("create", "hcloud:index/server:Server", "mx1"),
        ResourceChange("replace", "command:remote:Command", "mx1-stalwart"),
        ResourceChange("delete", "hcloud:index/rdns:Rdns", "mx2-ptr-v4"),
    ]
    assert lines[-1] == "warning: careful"
    assert lines == result.log


def test_plugins_are_pinned_to_the_installed_sdks() -> None:
    pins = default_plugins()
    assert set(pins) == {"hcloud", "command"}
    assert all(v.startswith("v") and v[1].isdigit() for v in pins.values())


@needs_pulumi
def test_live_engine_against_a_file_backend(tmp_path: Path) -> None:
    import pulumi

    def program() -> None:
        config = FleetConfig.from_pulumi()
        pulumi.export("workspace", config.workspace_id)
        pulumi.export("servers", {})

    live = engine(tmp_path, program=program)
    lines: list[str] = []
    preview = live.preview("ws-live", minimal_config(), on_event=lines.append)
    assert preview.changes == []
    up = live.up("ws-live", minimal_config(), on_event=lines.append)
    assert up.outputs["workspace"] == "ws-live-test"
    assert live.outputs("ws-live")["workspace"] == "ws-live-test"
    assert (tmp_path / "state" / ".pulumi").is_dir()  # the file backend holds the state
    again = live.up("ws-live", minimal_config())
    assert again.changes == []
    assert live.refresh("ws-live", minimal_config()).changes == []
    live.destroy("ws-live", minimal_config())
    assert lines


@needs_pulumi
def test_live_secret_config_is_stored_encrypted(tmp_path: Path) -> None:
    from dataclasses import replace

    from tests.support.stack_fleet import ADMIN_PASSWORD, SSH_PRIVATE, SSH_PUBLIC

    def program() -> None:
        FleetConfig.from_pulumi()

    live = engine(tmp_path, program=program)
    config = replace(
        minimal_config(),
        stalwart_admin_password=ADMIN_PASSWORD,
        ssh_public_key=SSH_PUBLIC,
        ssh_private_key=SSH_PRIVATE,
    )
    live.preview("ws-sec", config)
    settings = (tmp_path / "work" / "ws-sec" / "Pulumi.ws-sec.yaml").read_text()
    assert ADMIN_PASSWORD not in settings and "secure:" in settings


def test_dynamic_providers_run_in_this_interpreter(tmp_path: Path) -> None:
    """The DNS record and Hostwinds providers are Python the engine starts in its own process:
    it must be ours, where `stacks` and `dnspublish` import."""
    import sys

    assert engine(tmp_path).env()["PULUMI_PYTHON_CMD"] == sys.executable
