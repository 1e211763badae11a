"""`penguinmails stack preview WORKSPACE` in a real process against the test database."""

import json
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.support import factories
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import cli


def test_stack_preview_prints_the_changes_through_the_sandbox(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    with Session(committed) as session:
        tenant = factories.create_tenant(session)
        ws = factories.create_workspace(session, tenant, sandbox=True)
        factories.create_mail_domain(session, ws, "example.com")
        mx1 = factories.create_server(session, ws, name="mx1")
        factories.create_inbox(session, ws, email_address="sales@example.com", server=mx1)
        session.commit()
        workspace_id, stack_name = str(ws.id), ws.stack_name
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
    )

    done = cli(env, "stack", "preview", workspace_id)
    assert done.returncode == 0, done.stderr
    assert f"stack {stack_name} (sandbox engine)" in done.stdout
    assert "create   hcloud:index/server:Server mx1" in done.stdout
    assert "create   command:remote:Command account-sales@example.com" in done.stdout

    by_name = cli(env, "stack", "preview", stack_name, "--json")
    assert by_name.returncode == 0, by_name.stderr
    doc = json.loads(by_name.stdout)
    assert doc["engine"] == "sandbox" and doc["stack"] == stack_name
    assert {"op": "create", "type": "hcloud:index/server:Server", "name": "mx1"} in doc["changes"]
    assert doc["summary"]["create"] == len(doc["changes"])

    # A preview changes nothing: the stack has no outputs yet.
    outputs = cli(env, "stack", "outputs", stack_name)
    assert outputs.returncode == 0 and json.loads(outputs.stdout) == {}


def test_unknown_workspace_is_an_error(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
    )
    done = cli(env, "stack", "preview", "ws-does-not-exist")
    assert done.returncode == 2
    assert "no workspace" in done.stderr
