"""Where the process's settings may be read. The settings are one object read from the
environment (`settings.get_settings`); the rooms that compose a process (cli, api and the
console through api's SettingsDep, scheduler, automation) read it and pass it down, and the rooms
below them are given the values they need, so a test hands them the settings it means. Two
process-wide resources are the exceptions: the database engine and the key that encrypts
columns, both resolved once per process."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIVEN = ["domain", "maildns", "probes", "stacks", "kit", "database"]
PROCESS_WIDE = {"kit/crypto.py", "database/session.py"}


def readers(room: str, root: Path = ROOT) -> list[str]:
    """Every `get_settings` mentioned (imported, called or passed) in the room's modules."""
    found = []
    for path in sorted((root / room).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in PROCESS_WIDE or "/migrations/" in rel:
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            if "get_settings" in names:
                found.append(f"{rel}:{node.lineno}")
    return found


def test_the_rooms_below_the_process_boundary_are_given_their_settings() -> None:
    offenders = [where for room in GIVEN for where in readers(room)]
    assert offenders == [], (
        "these modules read the global settings; take the settings (or the values) as a "
        f"parameter from the caller instead: {offenders}"
    )


def test_the_scan_finds_a_reader(tmp_path: Path) -> None:
    """The scan above can fail: a module that reads the settings is reported."""
    (tmp_path / "domain" / "inboxes").mkdir(parents=True)
    module = tmp_path / "domain" / "inboxes" / "service.py"
    module.write_text("from settings import get_settings\n\nLIMIT = get_settings().port\n")
    (tmp_path / "domain" / "given.py").write_text("def f(settings):\n    return settings.port\n")
    assert readers("domain", tmp_path) == [
        "domain/inboxes/service.py:1",
        "domain/inboxes/service.py:3",
    ]
