"""The sandbox engine: the real program under the mock runtime, state in the test Postgres."""

import threading
from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from automation.engine import ResourceChange
from automation.errors import StackConfigError, StackLocked
from automation.sandbox.engine import SandboxEngine
from automation.sandbox.state import MemoryStore, PostgresStore
from stacks.config import FleetConfig
from tests.support.stack_fleet import fleet_config, mailbox, server

COMMAND = "command:remote:Command"
SERVER = "hcloud:index/server:Server"


def two_servers() -> FleetConfig:
    return fleet_config(
        servers=(server("mx1"), server("mx2")),
        mailboxes=(mailbox("a@example.com", "mx1"), mailbox("b@example.com", "mx2")),
    )


def engine() -> SandboxEngine:
    # A new engine object each time: nothing may carry over in memory between runs.
    return SandboxEngine(PostgresStore(), digest_key=b"test-key")


def test_unchanged_config_reports_no_changes(committed: Engine) -> None:
    first = engine().up("ws-a", two_servers())
    assert first.summary["create"] == len(first.changes) > 0
    assert first.summary["same"] == 0
    # Compared resource by resource (a refresh first, so the unchanged `up` is not skipped).
    engine().refresh("ws-a", two_servers())
    second = engine().up("ws-a", two_servers())
    assert second.changes == []
    assert second.summary == {
        "create": 0, "update": 0, "delete": 0, "replace": 0, "same": len(first.changes),
    }  # fmt: skip
    assert second.outputs == first.outputs


def test_adding_a_mailbox_is_exactly_one_create(committed: Engine) -> None:
    engine().up("ws-b", two_servers())
    config = two_servers()
    more = replace(config, mailboxes=(*config.mailboxes, mailbox("c@example.com", "mx2")))
    result = engine().up("ws-b", more)
    assert result.changes == [ResourceChange("create", COMMAND, "account-c@example.com")]
    assert "c@example.com" in result.outputs["mailboxes"]


def test_removing_a_server_deletes_its_resources(committed: Engine) -> None:
    engine().up("ws-c", two_servers())
    config = two_servers()
    fewer = replace(config, servers=config.servers[:1], mailboxes=config.mailboxes[:1])
    result = engine().up("ws-c", fewer)
    assert {c.op for c in result.changes} == {"delete"}
    assert sorted((c.type, c.name) for c in result.changes) == sorted(
        [
            (SERVER, "mx2"),
            ("hcloud:index/rdns:Rdns", "mx2-ptr-v4"),
            ("hcloud:index/rdns:Rdns", "mx2-ptr-v6"),
            (COMMAND, "mx2-stalwart"),
            (COMMAND, "mx2-domain-example.com"),
            (COMMAND, "account-b@example.com"),
        ]
    )
    # Dependents go first, the machine last.
    assert result.changes[-1] == ResourceChange("delete", SERVER, "mx2")
    assert list(result.outputs["servers"]) == ["mx1"]
    assert engine().outputs("ws-c") == result.outputs


def test_ids_and_addresses_are_stable_and_from_the_configured_ranges(committed: Engine) -> None:
    first = engine().up("ws-d", two_servers()).outputs["servers"]
    again = engine().up("ws-d", two_servers()).outputs["servers"]
    assert first == again
    assert {s["ipv4"] for s in first.values()} == {"192.0.2.1", "192.0.2.2"}
    assert all(s["ipv6"].startswith("2001:db8:") for s in first.values())
    assert all(s["provider_id"].isdigit() and s["status"] == "running" for s in first.values())
    assert len({s["provider_id"] for s in first.values()}) == 2
    # A new server gets a fresh address; the others keep theirs.
    config = two_servers()
    grown = replace(config, servers=(*config.servers, server("mx3")))
    after = engine().up("ws-d", grown).outputs["servers"]
    assert after["mx1"] == first["mx1"] and after["mx2"] == first["mx2"]
    assert after["mx3"]["ipv4"] == "192.0.2.3"


def test_changes_that_need_a_new_machine_are_replacements(committed: Engine) -> None:
    engine().up("ws-e", two_servers())
    config = two_servers()
    moved = replace(
        config, servers=(replace(config.servers[0], region="eu-north"), config.servers[1])
    )
    result = engine().up("ws-e", moved)
    ops = {(c.type, c.name): c.op for c in result.changes}
    assert ops[(SERVER, "mx1")] == "replace"
    assert ops[(COMMAND, "account-a@example.com")] == "replace"  # runs again on the new machine
    assert (SERVER, "mx2") not in ops


def test_quota_or_password_change_is_an_in_place_update(committed: Engine) -> None:
    engine().up("ws-f", two_servers())
    config = two_servers()
    rotated = replace(
        config,
        mailboxes=(
            replace(config.mailboxes[0], password="a-brand-new-password"),
            config.mailboxes[1],
        ),
    )
    result = engine().up("ws-f", rotated)
    assert result.changes == [ResourceChange("update", COMMAND, "account-a@example.com")]
    resized = replace(
        rotated, servers=(replace(config.servers[0], size="business"), config.servers[1])
    )
    assert engine().up("ws-f", resized).changes == [ResourceChange("update", SERVER, "mx1")]


def test_preview_changes_nothing(committed: Engine) -> None:
    preview = engine().preview("ws-g", two_servers())
    assert preview.summary["create"] > 0
    assert engine().outputs("ws-g") == {}
    assert engine().preview("ws-g", two_servers()).changes == preview.changes


def test_no_secret_is_stored(committed: Engine) -> None:
    config = two_servers()
    engine().up("ws-h", config)
    with committed.connect() as conn:
        row = conn.execute(
            text(
                "SELECT resources::text || outputs::text FROM sandbox_stacks "
                "WHERE stack_name = 'ws-h'"
            )
        ).scalar_one()
    for secret in (
        config.mailboxes[0].password,
        config.stalwart_admin_password,
        config.hetzner_token,
        "PRIVATE KEY",
    ):
        assert secret and secret not in row


def test_destroy_deletes_everything(committed: Engine) -> None:
    up = engine().up("ws-i", two_servers())
    result = engine().destroy("ws-i", two_servers())
    assert {c.op for c in result.changes} == {"delete"}
    assert len(result.changes) == up.summary["create"]
    assert engine().outputs("ws-i") == {}
    assert engine().up("ws-i", two_servers()).summary["create"] == up.summary["create"]


def test_concurrent_runs_on_different_stacks(committed: Engine) -> None:
    results: dict[str, object] = {}

    def run(stack: str) -> None:
        try:
            results[stack] = engine().up(stack, two_servers()).outputs
        except Exception as exc:
            results[stack] = exc

    threads = [threading.Thread(target=run, args=(f"ws-par-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(v, dict) for v in results.values()), results
    for stack, outputs in results.items():
        assert isinstance(outputs, dict)
        ips = [s["ipv4"] for s in outputs["servers"].values()]
        assert len(set(ips)) == len(ips) == 2  # each stack got its own two addresses
        # Which server got which id is up to the order the runtime registered them in; once
        # given, it stays: a later run of the stack answers the same.
        assert engine().up(stack, two_servers()).outputs == outputs


def test_a_writer_that_lost_the_race_is_told_to_retry(committed: Engine) -> None:
    store = PostgresStore()
    stale = store.load("ws-j")
    engine().up("ws-j", two_servers())
    with pytest.raises(StackLocked) as err:
        store.save("ws-j", stale)
    assert err.value.transient


def test_program_config_error_names_the_key() -> None:
    sandbox = SandboxEngine(MemoryStore(), digest_key=b"k")
    config = two_servers()
    bad = object.__new__(FleetConfig)  # skip validation here to reach the program's own check
    object.__setattr__(bad, "__dict__", {**config.__dict__, "stalwart_version": "v9"})
    with pytest.raises(StackConfigError) as err:
        sandbox.preview("ws-k", bad)
    assert err.value.field == "penguinmails:stalwartVersion"
    assert not err.value.transient


def test_events_are_streamed(committed: Engine) -> None:
    lines: list[str] = []
    result = engine().up("ws-l", two_servers(), on_event=lines.append)
    assert lines == result.log
    assert any(line.startswith("+ create hcloud:index/server:Server mx1") for line in lines)


def test_a_015_server_moved_to_016_is_refused_with_the_reason(committed: Engine) -> None:
    old = fleet_config(servers=(server("mx1", stalwart_version="v0.15.5"), server("mx2")))
    first = engine().up("ws-pin", old)
    assert first.outputs["servers"]["mx1"]["stalwart_version"] == "v0.15.5"
    assert first.outputs["servers"]["mx2"]["stalwart_version"] == "v0.16.18"
    moved = fleet_config(servers=(server("mx1"), server("mx2")))
    with pytest.raises(StackConfigError) as err:
        engine().up("ws-pin", moved)
    assert err.value.field == "penguinmails:stalwartVersion"
    assert "server mx1: cannot move from v0.15.5 to v0.16.18 in place" in str(err.value)
    assert "offline migration (UPGRADING/v0_16.md" in str(err.value)
    # Within a generation a pin change is an in-place re-install.
    newer = fleet_config(servers=(server("mx1", stalwart_version="v0.15.4"), server("mx2")))
    assert engine().up("ws-pin", newer).outputs["servers"]["mx1"]["stalwart_version"] == "v0.15.4"


def test_the_state_the_sandbox_keeps_holds_no_secret_in_clear(committed: Engine) -> None:
    from tests.support.stack_fleet import (
        ADMIN_PASSWORD,
        DKIM_PRIVATE,
        HETZNER_TOKEN,
        HOSTWINDS_KEY,
        MAILBOX_PASSWORD,
        SSH_PRIVATE,
    )

    config = fleet_config(
        servers=(server("mx1"), server("mx2", provider="hostwinds"), server("mx3", "existing")),
        mailboxes=(mailbox("a@example.com", "mx1"), mailbox("b@example.com", "mx2")),
    )
    engine().up("ws-secrets", config)
    with committed.connect() as conn:
        row = conn.execute(
            text("SELECT resources::text, outputs::text FROM sandbox_stacks WHERE stack_name = :s"),
            {"s": "ws-secrets"},
        ).one()
    stored = row[0] + row[1]
    assert "account-a@example.com" in stored  # it is the state of this stack
    secrets = [ADMIN_PASSWORD, MAILBOX_PASSWORD, HETZNER_TOKEN, HOSTWINDS_KEY]
    secrets += [line for line in (SSH_PRIVATE + DKIM_PRIVATE).splitlines() if "-----" not in line]
    for secret in secrets:
        assert secret not in stored
    assert "PRIVATE KEY" not in stored


def test_command_outputs_are_declared_secret() -> None:
    from stacks.stalwart import SECRET_OUTPUTS, _opts

    assert _opts([]).additional_secret_outputs == SECRET_OUTPUTS == ["stdout", "stderr"]
