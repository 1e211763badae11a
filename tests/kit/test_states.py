"""The state machine kit, and the rule that every status write goes through an entity's
machine: a raw status write anywhere else in the source fails this test."""

import ast
import re
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace

import pytest

from domain.dns_publishing.states import PUBLISH
from domain.inboxes.states import INBOX, InboxStatus
from domain.operations.states import OPERATION, OperationStatus
from domain.servers.states import SERVER, ServerStatus
from domain.warmup.states import WARMUP, WarmupStatus
from domain.webhooks.states import DELIVERY
from kit.states import InvalidTransition, Machine

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("settings", "kit", "database", "domain", "api", "automation", "scheduler", "cli")
STATE_COLUMNS = ("status", "warmup_status", "publish_status")
RAW_SQL_WRITE = re.compile(r"\bSET\s+(warmup_|publish_)?status\s*=\s*'", re.IGNORECASE)


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"


LIGHT = Machine("light", Light, {Light.RED: {Light.GREEN}, Light.GREEN: {Light.AMBER}})


def test_move_follows_the_table_and_refuses_the_rest() -> None:
    light = SimpleNamespace(status="red")
    assert LIGHT.move(light, Light.GREEN) is True and light.status == "green"
    assert LIGHT.move(light, Light.GREEN) is False  # the same state: idempotent
    with pytest.raises(InvalidTransition) as refused:
        LIGHT.move(light, Light.RED)
    assert refused.value.status_code == 409 and "green" in refused.value.message
    assert light.status == "green"


def test_edges_and_sources_for_set_based_writes() -> None:
    assert LIGHT.edge(Light.GREEN, Light.AMBER) == {"source": "green", "target": "amber"}
    with pytest.raises(InvalidTransition):
        LIGHT.edge(Light.AMBER, Light.RED)
    assert LIGHT.sources(Light.AMBER) == ["green"]
    assert "amber -> (final)" in LIGHT.table()


@pytest.mark.parametrize("machine", [INBOX, SERVER, OPERATION, DELIVERY, WARMUP, PUBLISH])
def test_every_state_of_every_entity_is_in_its_table(machine: Machine[StrEnum]) -> None:
    assert set(machine.transitions) == set(machine.states)
    for targets in machine.transitions.values():
        assert targets <= set(machine.states)


def test_the_transitions_the_bugs_needed_are_refused() -> None:
    # A deleting inbox never becomes ready by itself; a finished operation never runs again;
    # the health sweep cannot make a server that is still being built `ready`.
    assert not INBOX.allowed(InboxStatus.DELETING, InboxStatus.READY)
    assert not OPERATION.allowed(OperationStatus.SUCCEEDED, OperationStatus.RUNNING)
    assert not OPERATION.allowed(OperationStatus.CANCELLED, OperationStatus.QUEUED)
    assert not SERVER.allowed(ServerStatus.PROVISIONING, ServerStatus.UNREACHABLE)


def _raw_status_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            for element in elements:
                if isinstance(element, ast.Attribute) and element.attr in STATE_COLUMNS:
                    found.append(f"{where}:{node.lineno} assigns .{element.attr}")
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in STATE_COLUMNS and isinstance(kw.value, ast.Constant):
                    found.append(f"{where}:{node.lineno} status={kw.value.value!r}")
        literal = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if literal and RAW_SQL_WRITE.search(node.value):  # type: ignore[attr-defined]
            found.append(f"{where}:{node.lineno} SQL sets a literal status")
    return found


def test_no_status_is_written_except_through_its_machine() -> None:
    sources = [
        p
        for room in ROOMS
        for p in (ROOT / room).rglob("*.py")
        if p.name != "states.py" and "versions" not in p.parts
    ]
    assert len(sources) > 50  # the scan really looked at the tree
    found = [hit for path in sources for hit in _raw_status_writes(path)]
    assert found == []


def test_the_scan_catches_each_kind_of_raw_write(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "inbox.status = 'ready'\n"
        "server.status, server.reason = 'failed', None\n"
        "update(X).values(status='dead')\n"
        "text(\"UPDATE inboxes SET status = 'ready'\")\n"
        "INBOX.move(inbox, InboxStatus.READY)\n"
        "inbox.warmup_status = 'paused'\n"
    )
    assert len(_raw_status_writes(sample)) == 5


def test_a_machine_moves_the_column_it_is_declared_on() -> None:
    inbox = SimpleNamespace(status="ready", warmup_status="not_started")
    assert WARMUP.move(inbox, WarmupStatus.IN_PROGRESS) is True
    assert (inbox.status, inbox.warmup_status) == ("ready", "in_progress")
    with pytest.raises(InvalidTransition) as refused:
        WARMUP.move(SimpleNamespace(warmup_status="completed"), WarmupStatus.PAUSED)
    assert refused.value.field == "warmup_status"


@pytest.mark.parametrize("machine", [INBOX, SERVER, OPERATION, DELIVERY, WARMUP, PUBLISH])
def test_the_docs_draw_the_tables_the_code_enforces(machine: Machine[StrEnum]) -> None:
    assert machine.table() in (ROOT / "docs" / "states.md").read_text()
