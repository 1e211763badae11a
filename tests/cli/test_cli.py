import json
from pathlib import Path

from sqlalchemy import Engine, text

from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import cli


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
    )


def test_tenant_create_json_prints_one_object(
    database_url: str, committed: Engine, tmp_path: Path
) -> None:
    done = cli(_env(database_url, tmp_path), "tenant", "create", "Acme", "--json")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert set(obj) == {"tenant_id", "api_key"}
    with committed.connect() as conn:
        name = conn.execute(
            text("SELECT name FROM tenants WHERE id = :i"), {"i": obj["tenant_id"]}
        ).scalar_one()
    assert name == "Acme"


def test_apikey_create_and_revoke(database_url: str, committed: Engine, tmp_path: Path) -> None:
    env = _env(database_url, tmp_path)
    tenant = json.loads(cli(env, "tenant", "create", "Acme", "--json").stdout)
    second = cli(env, "apikey", "create", "--tenant", tenant["tenant_id"], "--json")
    assert second.returncode == 0, second.stderr
    prefix = json.loads(second.stdout)["prefix"]
    listed = json.loads(
        cli(env, "apikey", "list", "--tenant", tenant["tenant_id"], "--json").stdout
    )
    assert {k["prefix"] for k in listed} == {tenant["api_key"].split("_")[1], prefix}
    assert all(
        set(k) == {"prefix", "name", "created_at", "last_used_at", "revoked"} for k in listed
    )
    assert tenant["api_key"] not in json.dumps(listed)
    tenants = json.loads(cli(env, "tenant", "list", "--json").stdout)
    assert [t["name"] for t in tenants] == ["Acme"]
    revoked = cli(env, "apikey", "revoke", prefix)
    assert revoked.returncode == 0 and prefix in revoked.stdout
    with committed.connect() as conn:
        revoked_at = conn.execute(
            text("SELECT revoked_at FROM api_keys WHERE prefix = :p"), {"p": prefix}
        ).scalar_one()
    assert revoked_at is not None
    after = json.loads(cli(env, "apikey", "list", "--tenant", tenant["tenant_id"], "--json").stdout)
    assert [k["revoked"] for k in after if k["prefix"] == prefix] == [True]


def test_bad_arguments_exit_non_zero_with_a_message(database_url: str, tmp_path: Path) -> None:
    env = _env(database_url, tmp_path)
    for args, expected in [
        ((), "required"),
        (("tenant",), "required"),
        (("tenant", "create"), "name"),
        (("apikey", "create", "--tenant", "not-a-uuid"), "--tenant must be a tenant id"),
        (("apikey", "revoke", "nosuchkey"), "no API key"),
        (("frobnicate",), "invalid choice"),
    ]:
        done = cli(env, *args)
        assert done.returncode != 0, args
        assert expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
