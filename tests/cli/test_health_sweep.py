import json
from pathlib import Path

from sqlalchemy import Engine, text

from database.session import session_scope
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.factories import create_server, create_tenant, create_workspace
from tests.support.serving import cli


def test_health_sweep_checks_every_live_server_once_and_records_the_results(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    with session_scope() as s:
        tenant = create_tenant(s)
        workspace = create_workspace(s, tenant, sandbox=True)
        server = create_server(s, workspace, status="ready", ip_address="203.0.113.7")
        server_id = server.id
    env = child_env(database_url=database_url, secret_key=TEST_SECRET_KEY, data_dir=tmp_path)
    done = cli(env, "health", "sweep")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["servers"], report["simulated"], report["skipped"]) == (1, 1, False)
    assert report["checks"] > 0 and report["failed_servers"] == []
    with committed.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM health_check_results WHERE vps_id = :v"), {"v": server_id}
        ).scalar_one()
    assert stored == report["checks"]


def test_health_help_documents_the_exit_statuses(database_url: str, tmp_path: Path) -> None:
    done = cli(child_env(data_dir=tmp_path), "health", "sweep", "--help")
    assert done.returncode == 0
    assert "Exit status: 0" in " ".join(done.stdout.split())
