"""The event catalogue is the only source of event types: every type the code can emit is in it
(emitters pass its constants, and no code outside it makes an `EventType`), every type in it is
emitted somewhere, names follow one dotted scheme, and docs/events.md shows it."""

import ast
import re
from pathlib import Path

import pytest

from domain.events import catalogue
from domain.events.catalogue import EventType

ROOT = Path(__file__).resolve().parents[3]
ROOMS = ("kit", "database", "domain", "api", "automation", "scheduler", "cli")
CATALOGUE = ROOT / "domain" / "events" / "catalogue.py"


def _sources() -> list[Path]:
    return [
        p
        for room in ROOMS
        for p in (ROOT / room).rglob("*.py")
        if "versions" not in p.parts and p != CATALOGUE
    ]


def _constants() -> dict[str, EventType]:
    return {name: value for name, value in vars(catalogue).items() if isinstance(value, EventType)}


def _references(path: Path) -> set[str]:
    """`catalogue.X` attribute references and `from domain.events.catalogue import X` names."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "catalogue"
        ):
            found.add(node.attr)
        if isinstance(node, ast.ImportFrom) and node.module == "domain.events.catalogue":
            found |= {a.name for a in node.names}
    return found


def _constructions(path: Path) -> list[str]:
    """Calls that make an EventType, or record() calls whose `type=` is a string literal."""
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "EventType":
            found.append(f"{where}:{node.lineno} makes an EventType")
        for kw in node.keywords:
            if kw.arg == "type" and isinstance(kw.value, ast.Constant) and name == "record":
                found.append(f"{where}:{node.lineno} record(type={kw.value.value!r})")
    return found


def test_every_declared_type_is_listed_once() -> None:
    constants = _constants()
    assert set(constants.values()) == set(catalogue.ALL)
    assert len({t.name for t in catalogue.ALL}) == len(catalogue.ALL)
    assert {t.name: t for t in catalogue.ALL} == catalogue.BY_NAME


def test_names_follow_one_dotted_scheme() -> None:
    for t in catalogue.ALL:
        assert re.fullmatch(catalogue.NAME_PATTERN, t.name), t.name
        assert t.description.strip() and t.message.strip(), t.name
    assert set(catalogue.FAMILIES) == {t.family for t in catalogue.ALL}
    # the old underscore names map onto types that exist
    assert set(catalogue.RENAMED.values()) <= set(catalogue.BY_NAME)


def test_no_code_outside_the_catalogue_makes_an_event_type() -> None:
    sources = _sources()
    assert len(sources) > 50  # the scan really looked at the tree
    assert [hit for p in sources for hit in _constructions(p)] == []


def test_every_type_of_the_catalogue_is_emitted_somewhere() -> None:
    referenced = set().union(*(_references(p) for p in _sources()))
    missing = [name for name in _constants() if name not in referenced]
    assert missing == []


def test_the_scan_sees_constructions_and_string_types(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "events.record(s, type='dns_verified', message='x')\n"
        "catalogue.EventType('x.y', 'd', None, 'm')\n"
        "events.record(s, type=catalogue.DNS_VERIFIED, message='x')\n"
    )
    assert len(_constructions(sample)) == 2
    assert _references(sample) == {"EventType", "DNS_VERIFIED"}


def test_the_docs_page_shows_the_catalogue() -> None:
    assert catalogue.markdown() in (ROOT / "docs" / "events.md").read_text()


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("*", True),
        ("dns.*", True),
        ("dns.verified", True),
        ("mail_server.*", True),
        ("dns_verified", False),  # the old name
        ("dns.verifed", False),
        ("dns", False),
        ("nope.*", False),
        ("*.verified", False),
        ("dns.**", False),
    ],
)
def test_patterns_name_types_or_families_that_exist(pattern: str, ok: bool) -> None:
    assert (catalogue.pattern_problem(pattern) is None) is ok


def test_an_unknown_name_says_what_it_is_now() -> None:
    assert catalogue.pattern_problem("dns_verified") == (
        "unknown event type 'dns_verified' (now 'dns.verified'); see GET /api/v1/event-types"
    )
    assert catalogue.pattern_problem("*", allow_all=False) is not None
