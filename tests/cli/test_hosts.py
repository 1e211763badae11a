"""`penguinmails hosts`: the registered worker hosts and the shared-state finding, as an
operator (or a deploy script) checks a multi-machine deployment from any of its machines."""

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from domain.hosts import service as hosts
from kit.time import utcnow
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import cli


def _register(engine: Engine, host: str, *, local: bool) -> None:
    with Session(engine) as session:
        now = utcnow()
        hosts.beat(
            session,
            host=host,
            pid=7,
            started_at=now - timedelta(minutes=5),
            now=now,
            pulumi_backend="file" if local else "postgres",
            backend_local=local,
        )
        session.commit()


def test_hosts_reports_the_backend_and_a_machine_local_host(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    env = child_env(
        database_url=database_url.replace("postgres@", "postgres:pw-not-shown@"),
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        host_name="ops-box",
    )
    _register(committed, "worker-1", local=False)
    done = cli(env, "hosts", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["this_host"] == "ops-box" and report["finding"] is None
    assert report["pulumi_backend"].startswith("postgres://postgres@")
    assert "pw-not-shown" not in done.stdout + done.stderr
    assert [w["host"] for w in report["workers"]] == ["worker-1"]

    _register(committed, "worker-2", local=True)
    done = cli(env, "hosts")
    assert done.returncode == 1
    assert "worker-2 keeps Pulumi state in a file backend" in done.stdout
    assert "PENGUINMAILS_PULUMI_BACKEND_URL" in done.stdout
