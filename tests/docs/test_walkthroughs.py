"""The documented walk-throughs, run as written: the README's first call and docs/health.md's
drill are taken from the Markdown, run by bash against a real `penguinmails serve`, and each
answer checked against what the text says it is. And every command in the README's table parses
with the options it shows. A docs edit that breaks a walk-through fails here."""

import json
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from cli.main import build_parser
from database.models.events import Event
from database.session import session_scope
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import BIN, serving

ROOT = Path(__file__).resolve().parents[2]


def code_block(doc: str, after_heading: str) -> list[str]:
    """The commands of the first fenced block after `after_heading`: continuation lines
    joined, each command with the `# ...` comment lines that follow it (its documented answer)."""
    text = (ROOT / doc).read_text()
    start = text.index(after_heading)
    block = re.search(r"```[a-z]*\n(.*?)```", text[start:], re.S)
    assert block is not None, f"no code block after {after_heading!r} in {doc}"
    return block.group(1).replace("\\\n", " ").splitlines()


def run(line: str, env: dict[str, str], base: str) -> subprocess.CompletedProcess[str]:
    """One documented command, in bash: the API at `base`, `penguinmails` this tree's."""
    line = line.replace("http://127.0.0.1:8000", base).replace("localhost:8000", base)
    line = re.sub(r"^(\.venv/bin/)?penguinmails\b", shlex.quote(str(BIN)), line)
    if line.startswith("curl"):
        line += " -w '\\n%{http_code}'"
    return subprocess.run(
        ["bash", "-c", line], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def answer(done: subprocess.CompletedProcess[str]) -> tuple[int, dict[str, object]]:
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


@pytest.mark.slow
def test_the_readme_first_call_and_the_health_drill_work_as_written(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        worker_threads=1,
        # The DNS sweep would ask the outside world about the example domains: keep it local.
        dns_nameservers="127.0.0.1:9",
    )
    with serving(env) as base:
        lines = [line for line in code_block("README.md", "### Your first call") if line]
        assert lines[0].endswith('tenant create "Acme" --json')
        created = run(lines[0], env, base)
        assert created.returncode == 0, created.stderr
        tenant = json.loads(created.stdout)
        assert lines[1].startswith("# {") and set(json.loads(lines[1][2:].replace("...", "x")))
        assert lines[2].startswith("export PM_KEY=")
        env["PM_KEY"] = tenant["api_key"]
        status, workspace = answer(run(lines[3], env, base))
        documented = re.match(r"# (\d{3}) (\{.*\})", lines[4])
        assert documented is not None
        assert status == int(documented.group(1))
        promised = re.findall(r'"(\w+)": ("[^"]*"|true|false)', documented.group(2))
        for key, value in promised:
            if value != '"..."':
                assert workspace[key] == json.loads(value), key

        # docs/health.md: make a sandbox server's check fail, sweep, see the alert.
        server = subprocess.run(
            ["curl", "-s", "-X", "POST", f"{base}/api/v1/workspaces/{workspace['id']}/vps",
             "-H", f"Authorization: Bearer {tenant['api_key']}",
             "-H", "Content-Type: application/json",
             "-d", '{"provider": "existing", "size": "starter", "region": "eu-central", '
                   '"ip_address": "203.0.113.50"}'],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        vps_id = json.loads(server.stdout)["id"]
        headers = {"Authorization": f"Bearer {tenant['api_key']}"}
        deadline = time.monotonic() + 60  # a bound on the wait, not an assertion on its length
        while httpx.get(f"{base}/api/v1/vps/{vps_id}", headers=headers).json()["status"] != "ready":
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.2)
        env.update(VPS=vps_id, KEY=tenant["api_key"])
        drill = [line for line in code_block("docs/health.md", "## Drills") if line]
        status, simulated = answer(run(drill[0], env, base))
        assert status == 200 and simulated["checks"]["tls"]["status"] == "critical"
        swept = run(drill[1], env, base)
        assert swept.returncode == 0, swept.stderr
        with session_scope() as s:
            alerts = s.scalars(
                select(Event).where(
                    Event.type == "health.alert", Event.subject_id == uuid.UUID(vps_id)
                )
            ).all()
        assert len(alerts) == 1 and "certificate expired (drill)" in alerts[0].message


def readme_commands() -> list[list[str]]:
    """Each `penguinmails ...` of the README's command table, as argv with placeholders filled."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Commands") :].split("\n\n")[1]
    fill = {"NAME": "Acme", "ID": str(uuid.uuid4()), "PREFIX": "abc", "WORKSPACE": "w",
            "DOMAIN": "example.com", "IP": "192.0.2.1", "D": "example.com", "S": "a@b.c",
            "H": "mx.example.com", "N": "key", "P": "8000"}  # fmt: skip
    commands = []
    for cell in re.findall(r"^\| (.*?) \|", table, re.M):
        for code in re.findall(r"`([^`]+)`", cell):
            words = code.replace("[", "").replace("]", "").split()
            if words[0] != "penguinmails":
                words = ["penguinmails", *words] if words[0] in {"apikey", "stack"} else []
            argv = [fill.get(w, w) for w in words[1:] if w not in {"/", "|"}]
            if argv:
                commands.append(argv)
    return commands


def test_every_command_in_the_readme_table_parses_as_shown() -> None:
    commands = readme_commands()
    assert len(commands) >= 12
    parser = build_parser()
    for argv in commands:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"README command does not parse: penguinmails {' '.join(argv)} ({exc})")
