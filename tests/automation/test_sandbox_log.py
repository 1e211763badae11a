"""The sandbox engine's event log: one marked line per change, then the summary line."""

import re
from dataclasses import replace

from automation.sandbox.engine import SandboxEngine
from automation.sandbox.state import MemoryStore
from tests.support.stack_fleet import fleet_config, mailbox, server


def test_log_marks_each_change_and_ends_with_the_summary() -> None:
    engine = SandboxEngine(MemoryStore(), digest_key=b"test-key")
    config = fleet_config(servers=(server("mx1"),), mailboxes=(mailbox("a@example.com", "mx1"),))
    events: list[str] = []
    preview = engine.preview("ws-log", config, on_event=events.append)
    assert events == preview.log
    assert all(line.startswith("+ create ") for line in preview.log[:-1])
    assert len(preview.log) == len(preview.changes) + 1
    n = len(preview.changes)
    assert re.fullmatch(
        rf"preview: {n} resources evaluated in \d+\.\d\ds \({n} create\)", preview.log[-1]
    )

    engine.up("ws-log", config)
    engine.refresh("ws-log", config)  # else the unchanged `up` is skipped
    again = engine.up("ws-log", config)
    assert again.log == [again.log[-1]]
    assert re.fullmatch(rf"up: {n} resources evaluated in \d+\.\d\ds \({n} same\)", again.log[-1])

    fewer = replace(config, mailboxes=())
    gone = engine.up("ws-log", fewer)
    assert gone.log[0].startswith("- delete command:remote:Command account-a@example.com")
    assert re.fullmatch(
        rf"up: {n - 1} resources evaluated in \d+\.\d\ds \(1 delete, {n - 1} same\)", gone.log[-1]
    ), gone.log
