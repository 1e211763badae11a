"""`penguinmails serve` as a user runs it: a real process, real HTTP, the CLI for the key."""

import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import cli, create_tenant, serving

pytestmark = pytest.mark.slow


def _walkthrough(base: str, env: dict[str, str]) -> None:
    owner = create_tenant(env, "Acme")
    stranger = create_tenant(env, "Other")
    auth = {"Authorization": f"Bearer {owner['api_key']}"}
    created = httpx.post(
        f"{base}/api/v1/workspaces", json={"name": "eu", "sandbox": True}, headers=auth
    )
    assert created.status_code == 201, created.text
    ws = created.json()["id"]
    assert httpx.post(f"{base}/api/v1/workspaces", json={"name": "eu2"}).status_code == 401
    other = {"Authorization": f"Bearer {stranger['api_key']}"}
    assert httpx.get(f"{base}/api/v1/workspaces/{ws}", headers=other).status_code == 404
    assert httpx.get(f"{base}/api/v1/workspaces/{ws}", headers=auth).status_code == 200


def test_serve_on_a_configured_postgres(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
    )
    with serving(env) as base:
        _walkthrough(base, env)


def test_serve_on_the_embedded_default_with_no_configuration(embedded_dir: Path) -> None:
    env = child_env()
    workdir = embedded_dir / "fresh"
    workdir.mkdir()
    env["PWD"] = str(workdir)
    os.chdir(workdir)
    try:
        with serving(env) as base:
            _walkthrough(base, env)
            key_file = workdir / ".penguinmails" / "secret_key"
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            # The CLI process exiting must not stop the server the API is using.
            assert httpx.get(f"{base}/readyz").status_code == 200
        # Stopping the service (SIGTERM) stops the embedded Postgres it started.
        postmaster = workdir / ".penguinmails" / "pgdata" / "postmaster.pid"
        deadline = time.monotonic() + 20
        while postmaster.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not postmaster.exists(), "the embedded Postgres outlived the service"
    finally:
        os.chdir(Path(__file__).resolve().parents[2])


def test_secret_key_is_required_with_a_database_url(database_url: str) -> None:
    env = child_env(database_url=database_url)
    done = cli(env, "migrate")
    assert done.returncode != 0
    assert "PENGUINMAILS_SECRET_KEY is required" in done.stderr
