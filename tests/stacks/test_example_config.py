"""`Pulumi.example.yaml` is a working stack config: with its secrets set, the program accepts it."""

import json
from pathlib import Path

import yaml

from stacks.config import NS, FleetConfig
from tests.support.stack_fleet import (
    ADMIN_PASSWORD,
    DKIM_PRIVATE,
    MAILBOX_PASSWORD,
    SSH_PRIVATE,
    evaluate,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "Pulumi.example.yaml"


def test_example_stack_config_is_valid_and_deploys_its_fleet() -> None:
    config = yaml.safe_load(EXAMPLE.read_text())["config"]
    # Pulumi hands object values to the program as JSON text.
    values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    values.update(
        {
            f"{NS}:stalwartAdminPassword": ADMIN_PASSWORD,
            f"{NS}:sshPrivateKey": SSH_PRIVATE,
            f"{NS}:hetznerToken": "token",
            f"{NS}:dkimPrivateKeys": json.dumps({"example.com": DKIM_PRIVATE}),
            f"{NS}:mailboxPasswords": json.dumps({"sales@example.com": MAILBOX_PASSWORD}),
        }
    )
    fleet = FleetConfig.from_stack_config(values)
    assert [s.name for s in fleet.servers] == ["mx1", "own"]
    run = evaluate(fleet)
    assert set(run.outputs["servers"]) == {"mx1", "own"}
    assert run.recorder.named("account-sales@example.com")
