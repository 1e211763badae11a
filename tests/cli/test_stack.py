"""`penguinmails stack preview WORKSPACE` in a real process against the test database."""

import json
import subprocess
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


def test_stack_ssh_key_and_preflight(database_url: str, committed: Engine, tmp_path: Path) -> None:
    with Session(committed) as session:
        tenant = factories.create_tenant(session)
        ws = factories.create_workspace(session, tenant, sandbox=False)
        factories.create_server(session, ws, name="mx1")
        session.commit()
        workspace_id, public = str(ws.id), ws.ssh_public_key
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path,
        pulumi_command="pulumi-not-installed-here",
    )
    key = cli(env, "stack", "ssh-key", workspace_id)
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip() == public and "PRIVATE" not in key.stdout
    report = cli(env, "stack", "preflight", workspace_id)
    assert report.returncode == 1  # not ready: no CLI, no Hetzner token
    assert "live engine: NOT ready" in report.stdout
    assert "FAIL pulumi_cli" in report.stdout
    assert "FAIL credential:hetzner: PENGUINMAILS_HETZNER_TOKEN is not set" in report.stdout
    doc = json.loads(cli(env, "stack", "preflight", workspace_id, "--json").stdout)
    assert doc["ready"] is False and doc["engine"] == "live"


def _example_with(tmp_path: Path, name: str = "my-fleet", **replace: str) -> Path:
    """The docs' walk-through: `pulumi stack init` wrote the salt, the example's config is
    appended after it, secrets are set encrypted (`secure:`)."""
    example = Path(__file__).resolve().parents[2] / "Pulumi.example.yaml"
    # The walk-through's own step (the salt line `stack init` wrote stays first).
    config = subprocess.run(
        ["sed", "-n", "/^config:/,$p", str(example)], capture_output=True, text=True, check=True
    ).stdout
    assert config.startswith("config:\n")
    for old, new in replace.items():
        config = config.replace(old, new)
    secure = "\n".join(
        [
            "  penguinmails:stalwartAdminPassword:",
            "    secure: v1:abc:def",
            "  penguinmails:sshPrivateKey:",
            "    secure: v1:abc:def",
            "  penguinmails:hetznerToken:",
            "    secure: v1:abc:def",
            "  penguinmails:dkimPrivateKeys:",
            "    example.com:",
            "      secure: v1:abc:def",
            "  penguinmails:mailboxPasswords:",
            "    sales@example.com:",
            "      secure: v1:abc:def",
        ]
    )
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text("encryptionsalt: v1:salt=:v1:x:y\n" + config + "\n" + secure + "\n")
    return path


def test_keys_and_stack_validate_without_the_pulumi_cli(tmp_path: Path) -> None:
    env = child_env()
    dkim = cli(env, "keys", "dkim")
    assert dkim.returncode == 0, dkim.stderr
    pair = json.loads(dkim.stdout)
    assert pair["dkimAlgorithm"] == "rsa" and pair["dkimPrivateKey"].startswith("-----BEGIN")
    ssh = json.loads(cli(env, "keys", "ssh").stdout)
    assert ssh["sshPublicKey"].startswith("ssh-ed25519 ") and "OPENSSH" in ssh["sshPrivateKey"]
    ed = cli(env, "keys", "dkim", "--algorithm", "ed25519", "--private-key-file",
             str(tmp_path / "ed.pem"))  # fmt: skip
    assert "dkimPrivateKey" not in ed.stdout
    assert oct((tmp_path / "ed.pem").stat().st_mode & 0o777) == "0o600"

    fleet = _example_with(
        tmp_path,
        **{
            "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAreplaceWithYourKey": pair["dkimPublicKey"],
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIreplaceWithYourKey fleet": ssh["sshPublicKey"],
        },
    )
    ok = cli(env, "stack", "validate", "--config-file", str(fleet))
    assert ok.returncode == 0, ok.stderr
    assert "ok: 2 server(s), 1 domain(s), 1 mailbox(es)" in ok.stdout
    assert 'penguinmails:dkimPrivateKeys["example.com"]' in ok.stdout  # encrypted: not checked

    (tmp_path / "dkim.pem").write_text(pair["dkimPrivateKey"])
    secret = f'penguinmails:dkimPrivateKeys["example.com"]={tmp_path / "dkim.pem"}'
    matched = cli(env, "stack", "validate", "--config-file", str(fleet), "--secret", secret)
    assert matched.returncode == 0, matched.stderr
    assert "dkimPrivateKeys" not in matched.stdout.split("ok:", 1)[1].split("\n", 1)[1]

    (tmp_path / "other.pem").write_text(
        json.loads(cli(env, "keys", "dkim").stdout)["dkimPrivateKey"]
    )
    other = f'penguinmails:dkimPrivateKeys["example.com"]={tmp_path / "other.pem"}'
    wrong = cli(env, "stack", "validate", "--config-file", str(fleet), "--secret", other)
    assert wrong.returncode == 2
    assert "penguinmails:domains[0].dkimPublicKey: does not match its private key" in wrong.stderr

    bad = _example_with(tmp_path, "bad", **{"region: eu-central": "region: mars"})
    refused = cli(env, "stack", "validate", "--config-file", str(bad))
    assert refused.returncode == 2 and "penguinmails:servers[0].region" in refused.stderr
    missing = tmp_path / "Pulumi.missing.yaml"
    missing.write_text(
        fleet.read_text().replace("  penguinmails:sshPrivateKey:\n    secure: v1:abc:def\n", "")
    )
    gone = cli(env, "stack", "validate", "--config-file", str(missing))
    assert gone.returncode == 2 and "penguinmails:sshPrivateKey" in gone.stderr
