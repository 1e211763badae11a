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


def test_the_dynamic_provider_runs_in_this_interpreter(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = engine(tmp_path).env()
    assert env["PULUMI_PYTHON_CMD"] == sys.executable
    # That interpreter imports what the pickled Hostwinds and DNS record providers need.
    out = subprocess.run(
        [
            env["PULUMI_PYTHON_CMD"],
            "-c",
            "import pulumi.dynamic, stacks.hostwinds.provider, dnspublish",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr


class _GoneServerStack:
    """A stack whose server is gone: the first destroy fails dialling it (pulumi-command's
    error once dial_error_limit attempts failed); state can be exported and imported."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.deployment = {
            "resources": [
                {"urn": "urn:pulumi:s::p::hcloud:index/server:Server::mx1",
                 "type": "hcloud:index/server:Server"},
                {"urn": "urn:pulumi:s::p::command:remote:Command::mx1-stalwart",
                 "type": "command:remote:Command"},
                {"urn": "urn:pulumi:s::p::command:remote:Command::account-a@example.com",
                 "type": "command:remote:Command"},
            ]
        }  # fmt: skip

    def refresh(self, **kw: Any) -> Any:
        self.calls.append(
            "refresh" + (" clear_pending_creates" if kw.get("clear_pending_creates") else "")
        )

    def destroy(self, **kw: Any) -> Any:
        self.calls.append("destroy")
        if any(r["type"] == "command:remote:Command" for r in self.deployment["resources"]):
            raise auto.errors.CommandError(
                CommandResult(
                    stdout="",
                    stderr="error: dial tcp 203.0.113.9:22: connect: connection refused",
                    code=255,
                )
            )

        class Summary:
            resource_changes = {"delete": len(self.deployment["resources"])}

        class Result:
            summary = Summary()

        return Result()

    def export_stack(self) -> auto.Deployment:
        return auto.Deployment(version=3, deployment=self.deployment)

    def import_stack(self, state: auto.Deployment) -> None:
        self.calls.append("import")
        self.deployment = dict(state.deployment or {})


def test_destroy_of_a_gone_server_drops_its_commands_with_a_warning() -> None:
    stack = _GoneServerStack()
    result = StackResult()
    counts = LiveEngine._destroy(stack, {}, _Recorder(result, None))
    assert stack.calls == ["refresh clear_pending_creates", "destroy", "import", "destroy"]
    assert counts == {"delete": 1}
    assert [r["type"] for r in stack.deployment["resources"]] == ["hcloud:index/server:Server"]
    assert any("dropping 2 command resource(s)" in line and "mx1-stalwart" in line
               for line in result.log)  # fmt: skip


def test_destroy_failing_for_another_reason_is_not_hidden() -> None:
    class Broken(_GoneServerStack):
        def destroy(self, **kw: Any) -> Any:
            raise auto.errors.CommandError(CommandResult(stdout="", stderr="401 bad token", code=1))

    with pytest.raises(auto.errors.CommandError):
        LiveEngine._destroy(Broken(), {}, _Recorder(StackResult(), None))


def test_plugins_are_installed_once_per_host_and_never_into_another_hosts_home(
    tmp_path: Path,
) -> None:
    """With a stand-in CLI that records its calls: two processes' engines on one host (one
    PULUMI_HOME) install each pinned plugin once; another host's home gets its own install."""
    import os
    import stat

    calls = tmp_path / "calls.txt"
    fake = tmp_path / "fake-pulumi"
    fake.write_text(f'#!/bin/sh\necho "$PULUMI_HOME $*" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    pins = {"hcloud": "v1.0.0", "command": "v2.0.0"}

    def host(name: str) -> LiveEngine:
        return LiveEngine(
            command=str(fake),
            backend_url=(tmp_path / "state").as_uri(),
            passphrase="p",
            pulumi_home=tmp_path / name / "home",
            work_root=tmp_path / name / "work",
            plugins=dict(pins),
        )

    first = host("host-a").install_plugins()
    assert first == ["command v2.0.0", "hcloud v1.0.0"]
    assert host("host-a").install_plugins() == []  # same host: already there
    # A second process on the same host: nothing cached in memory, the marker file says so.
    from automation import live as live_module

    live_module._plugins_installed.clear()
    assert host("host-a").install_plugins() == []
    assert host("host-b").install_plugins() == first
    lines = calls.read_text().splitlines()
    home_a, home_b = tmp_path / "host-a" / "home", tmp_path / "host-b" / "home"
    assert lines == [
        f"{home_a} plugin install resource command v2.0.0",
        f"{home_a} plugin install resource hcloud v1.0.0",
        f"{home_b} plugin install resource command v2.0.0",
        f"{home_b} plugin install resource hcloud v1.0.0",
    ]
    assert os.path.exists(home_a / "penguinmails-plugins.json")


@needs_pulumi
def test_two_engines_on_separate_data_dirs_share_one_stack_and_one_lock(
    tmp_path: Path, database_url: str
) -> None:
    """Two hosts (separate data dirs, homes and work dirs) on the postgres backend derived from
    the database URL: what one host's `up` built is the other's stack, and while one host's
    update runs, the other's is refused by the backend's lock (StackLocked, transient)."""
    import threading
    import uuid

    import pulumi
    from sqlalchemy import create_engine, func, select
    from sqlalchemy import table as sql_table

    from domain.hosts.backends import postgres_url

    table = f"pulumi_state_{uuid.uuid4().hex[:8]}"
    backend = postgres_url(database_url, table)
    started, release = threading.Event(), threading.Event()

    def exporting() -> None:
        config = FleetConfig.from_pulumi()
        pulumi.export("workspace", config.workspace_id)

    def holding() -> None:
        exporting()
        started.set()
        release.wait(120)

    def host(name: str, program: Any) -> LiveEngine:
        return LiveEngine(
            backend=backend,
            passphrase="one-passphrase-for-every-host",
            pulumi_home=tmp_path / name / "pulumi" / "home",
            work_root=tmp_path / name / "pulumi" / "workspaces",
            plugins={},
            program=program,
        )

    from dataclasses import replace

    from tests.support.stack_fleet import ADMIN_PASSWORD, SSH_PRIVATE, SSH_PUBLIC

    # With secret config: host B's fresh work dir must encrypt it for the same stack.
    config = replace(
        minimal_config(),
        stalwart_admin_password=ADMIN_PASSWORD,
        ssh_public_key=SSH_PUBLIC,
        ssh_private_key=SSH_PRIVATE,
    )
    a, b = host("host-a", exporting), host("host-b", exporting)
    a.up("ws-shared", config)
    # One stack: host B sees host A's outputs and has nothing to change.
    assert b.outputs("ws-shared")["workspace"] == "ws-live-test"
    assert b.up("ws-shared", config).changes == []
    assert a.up("ws-shared", config).changes == []
    # One lock: host A's update holds the stack; host B's is refused meanwhile.
    slow = host("host-a", holding)
    failure: list[BaseException] = []

    def run_slow() -> None:
        try:
            slow.up("ws-shared", config)
        except BaseException as exc:  # reported below
            failure.append(exc)

    runner = threading.Thread(target=run_slow)
    runner.start()
    try:
        assert started.wait(120), "host A's update did not start"
        with pytest.raises(StackLocked):
            b.up("ws-shared", config)
    finally:
        release.set()
        runner.join(180)
    assert not failure, failure
    engine = create_engine(database_url)
    with engine.connect() as conn:  # the state is in the database, in the named table
        assert conn.scalar(select(func.count()).select_from(sql_table(table)))
    engine.dispose()
    assert not (tmp_path / "host-a" / "pulumi" / "state").exists()
    a.destroy("ws-shared", config)
