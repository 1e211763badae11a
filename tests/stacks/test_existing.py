"""Existing servers: nothing is created, only installed over SSH to the given host."""

from tests.support.stack_fleet import evaluate, fleet_config, mailbox, server


def test_existing_server_creates_nothing_but_the_install() -> None:
    config = fleet_config(
        servers=(
            server("own", provider="existing", ip="198.51.100.7", ssh_user="admin", ssh_port=2222),
        ),
        mailboxes=(mailbox("sales@example.com", "own"),),
    )
    run = evaluate(config)
    types = {r.type for r in run.recorder.resources}
    assert types == {"command:remote:Command"}
    install = run.recorder.named("own-stalwart")
    connection = install.input("connection")
    assert (connection["host"], connection["user"], connection["port"]) == (
        "198.51.100.7",
        "admin",
        2222,
    )
    # Not root: the install goes through passwordless sudo, stdin passed along.
    assert install.input("create").startswith("sudo -n env ")
    out = run.outputs["servers"]["own"]
    assert out["ipv4"] == "198.51.100.7"
    assert out["status"] == "running"
    assert out["provider_id"] == "existing:198.51.100.7"


def test_root_user_runs_the_install_directly() -> None:
    run = evaluate(fleet_config(servers=(server("own", provider="existing", ssh_user="root"),)))
    assert run.recorder.named("own-stalwart").input("create").startswith("env PM_")
