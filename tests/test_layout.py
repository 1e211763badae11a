"""Who may import whom around the tests, and the one way a test changes settings (CONTRIBUTING.md,
"Tests"). import-linter covers the product rooms among themselves; this covers what it cannot
see, by parsing every file with `ast`:

- `benchmarks/` imports from `tests` only `tests.support.*` (never a test module or folder);
- `tests/support/` imports no test module: product code and other `tests.support` modules only;
- a test folder imports from `tests` only `tests.support.*` and its own folder, so what two
  folders share lives in `tests/support/`;
- no product room imports `tests` or `benchmarks`;
- outside `tests/support/`, `tests/conftest.py` and `tests/settings/` (which tests how the
  environment is read), no test edits the environment or the cached settings: in-process changes
  go through the `override_settings` fixture, a child process's environment is `child_env(...)`.
"""

import ast
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
SUPPORT = TESTS / "support"
# The product rooms are import-linter's root packages (pyproject.toml).
PRODUCT_ROOMS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]
# Exempt from the settings rule: the bootstrap that sets the test database's variables, the
# helpers that implement the rule, and the settings room's own tests of reading the environment.
SETTINGS_RULE_EXEMPT = (TESTS / "conftest.py", SUPPORT, TESTS / "settings")
ENV_EDITS = {"pop", "popitem", "update", "setdefault", "clear", "__setitem__", "__delitem__"}
ENV_COPIES = {"copy", "items", "keys", "values"}

Rule = Callable[[str, str], str | None]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything imported, relative imports resolved. `from a import b`
    counts as `a.b` (b may be a module): `from tests import factories` is `tests.factories`."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], node.module or ""])
            else:
                base = node.module or ""
            for alias in node.names:
                yield node.lineno, f"{base.strip('.')}.{alias.name}"


def import_violations(paths: list[Path], rule: Rule) -> list[str]:
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        for line, name in imports(path, tree):
            problem = rule(module_name(path), name)
            if problem:
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {name}: {problem}")
    return found


def files(*tops: Path) -> list[Path]:
    return sorted(p for top in tops for p in top.rglob("*.py") if ".venv" not in p.parts)


def benchmark_rule(module: str, name: str) -> str | None:
    if within(name, "tests") and not within(name, "tests.support"):
        return "benchmarks may import only tests.support.*"
    return None


def support_rule(module: str, name: str) -> str | None:
    if within(name, "tests") and not within(name, "tests.support"):
        return "tests/support imports no test module (product code and tests.support only)"
    if within(name, "benchmarks"):
        return "tests/support imports no benchmark"
    return None


def folder_rule(module: str, name: str) -> str | None:
    if not within(name, "tests") or within(name, "tests.support"):
        return None
    folder = module.rsplit(".", 1)[0]
    if folder != "tests" and within(name, folder):
        return None
    return "import what folders share from tests.support (move the helper there)"


def product_rule(module: str, name: str) -> str | None:
    if within(name, "tests") or within(name, "benchmarks"):
        return "product code never imports tests or benchmarks"
    return None


def settings_violations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Edits of the environment or of the cached settings, and copies of the environment."""
    for node in ast.walk(tree):
        problem = _settings_problem(node)
        if problem:
            yield getattr(node, "lineno", 0), problem


def _settings_problem(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name | ast.Attribute):
        name = node.id if isinstance(node, ast.Name) else node.attr
        if name == "reset_settings":
            return "reset_settings: use the override_settings fixture"
        if name in {"putenv", "unsetenv"}:
            return f"os.{name}: use the override_settings fixture"
    if isinstance(node, ast.ImportFrom):
        names = {alias.name for alias in node.names}
        if "reset_settings" in names:
            return "reset_settings: use the override_settings fixture"
        if node.module == "os" and names & {"environ", "putenv", "unsetenv"}:
            return "from os import environ: see override_settings and child_env"
    if isinstance(node, ast.Assign | ast.Delete) and any(
        isinstance(t, ast.Subscript) and is_environ(t.value) for t in node.targets
    ):
        return "os.environ[...] changed: use the override_settings fixture"
    if isinstance(node, ast.Call):
        return _call_problem(node)
    if isinstance(node, ast.Dict) and any(
        k is None and is_environ(v) for k, v in zip(node.keys, node.values, strict=True)
    ):
        return "{**os.environ, ...}: build it with child_env()"
    return None


def _call_problem(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute) and is_environ(func.value):
        if func.attr in ENV_EDITS:
            return f"os.environ.{func.attr}(): use the override_settings fixture"
        if func.attr in ENV_COPIES:
            return f"os.environ.{func.attr}(): build it with child_env()"
    if isinstance(func, ast.Attribute) and func.attr in {"setenv", "delenv"}:
        variable = node.args[0] if node.args else None
        other = (
            isinstance(variable, ast.Constant)
            and isinstance(variable.value, str)
            and not variable.value.startswith("PENGUINMAILS_")
        )
        if not other:
            return f"{func.attr}() of a setting: use the override_settings fixture"
    if isinstance(func, ast.Name) and func.id == "dict" and any(map(is_environ, node.args)):
        return "dict(os.environ): build it with child_env()"
    return None


def is_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def settings_rule_files() -> list[Path]:
    def exempt(path: Path) -> bool:
        return any(path == e or e in path.parents for e in SETTINGS_RULE_EXEMPT)

    return [p for p in files(TESTS) if not exempt(p)]


def test_benchmarks_import_only_tests_support() -> None:
    found = import_violations(files(ROOT / "benchmarks"), benchmark_rule)
    assert not found, "\n".join(found)


def test_tests_support_imports_no_test_module() -> None:
    found = import_violations(files(SUPPORT), support_rule)
    assert not found, "\n".join(found)


def test_test_folders_share_only_through_tests_support() -> None:
    others = [p for p in files(TESTS) if SUPPORT not in p.parents]
    found = import_violations(others, folder_rule)
    assert not found, "\n".join(found)


def test_product_rooms_import_neither_tests_nor_benchmarks() -> None:
    rooms = files(*(ROOT / room for room in PRODUCT_ROOMS))
    assert len(rooms) > 50, "no product code found: is ROOT right?"
    found = import_violations(rooms, product_rule)
    assert not found, "\n".join(found)


def test_settings_change_only_through_override_settings_or_child_env() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {problem}"
        for path in settings_rule_files()
        for line, problem in settings_violations(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "\n".join(found)


# The checks can fail: each of these sources is refused (and the allowed ones are not).


@pytest.mark.parametrize(
    ("where", "source", "rule", "refused"),
    [
        ("benchmarks/x.py", "from tests.support.nsd import Nsd", benchmark_rule, False),
        ("benchmarks/x.py", "from tests.support import factories", benchmark_rule, False),
        ("benchmarks/x.py", "from tests.e2e.test_serve import x", benchmark_rule, True),
        ("benchmarks/x.py", "from tests import factories", benchmark_rule, True),
        ("benchmarks/x.py", "def f():\n    import tests.conftest", benchmark_rule, True),
        ("tests/support/x.py", "from tests.support.ports import free_port", support_rule, False),
        ("tests/support/x.py", "from . import ports", support_rule, False),
        ("tests/support/x.py", "from .. import conftest", support_rule, True),
        ("tests/support/x.py", "from tests.probes.test_checks import x", support_rule, True),
        ("tests/support/x.py", "import benchmarks._fault_harness", support_rule, True),
        ("tests/api/test_x.py", "from tests.support.factories import x", folder_rule, False),
        ("tests/maildns/test_x.py", "from tests.maildns.spf_suite import x", folder_rule, False),
        ("tests/api/test_x.py", "from tests.maildns.spf_suite import x", folder_rule, True),
        ("tests/test_x.py", "from tests.conftest import ROOT", folder_rule, True),
        ("api/x.py", "from tests.support.factories import x", product_rule, True),
        ("cli/x.py", "def f():\n    from benchmarks import faults", product_rule, True),
        ("cli/x.py", "from database.session import session_scope", product_rule, False),
    ],
)  # fmt: skip
def test_the_import_rules_refuse_what_they_should(
    where: str, source: str, rule: Rule, refused: bool
) -> None:
    path = ROOT / where
    found = [rule(module_name(path), name) for _, name in imports(path, ast.parse(source))]
    assert any(found) is refused, found


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ('os.environ["PENGUINMAILS_PORT"] = "1"', True),
        ('os.environ.pop("PENGUINMAILS_PORT", None)', True),
        ('del os.environ["PENGUINMAILS_PORT"]', True),
        ("env = {**os.environ, 'PENGUINMAILS_PORT': '1'}", True),
        ("env = dict(os.environ)", True),
        ('monkeypatch.setenv("PENGUINMAILS_PORT", "1")', True),
        ('monkeypatch.delenv(f"PENGUINMAILS_{name}")', True),
        ("monkeypatch.setenv(variable, value)", True),
        ("from settings import reset_settings", True),
        ("settings.reset_settings()", True),
        ('monkeypatch.setenv("HOME", "/tmp")', False),
        ('knob = os.environ.get("PENGUINMAILS_FUZZ_EXAMPLES", "25")', False),
        ("override_settings(port=1)", False),
        ("env = child_env(port=1)", False),
    ],
)
def test_the_settings_rule_refuses_what_it_should(source: str, refused: bool) -> None:
    found = list(settings_violations(ast.parse(source)))
    assert bool(found) is refused, found
