"""The stack config schema: a clear error naming the key for each invalid value, and a lossless
round trip through Pulumi stack config with secrets flagged."""

import json
from dataclasses import replace
from typing import Any

import pytest

from stacks.config import NS, SECRET_KEYS, ConfigError, FleetConfig
from tests.support.stack_fleet import (
    ADMIN_PASSWORD,
    MAILBOX_PASSWORD,
    domain,
    evaluate,
    fleet_config,
    mailbox,
    server,
)


def valid() -> FleetConfig:
    return fleet_config(
        servers=(
            server("mx1"),
            server("own", provider="existing"),
            server("hw", provider="hostwinds"),
        ),
        mailboxes=(mailbox("sales@example.com", "mx1"), mailbox("ops@example.com", "own")),
    )


def stack_values(config: FleetConfig) -> dict[str, Any]:
    return {k: v.value for k, v in config.to_stack_config().items()}


def test_round_trip_through_stack_config() -> None:
    config = valid()
    assert FleetConfig.from_stack_config(stack_values(config)) == config


def test_secrets_are_flagged_and_plain_keys_hold_none() -> None:
    rendered = valid().to_stack_config()
    secret = {k for k, v in rendered.items() if v.secret}
    # dnsCredentials is rendered only for a fleet with DNS connections (tests/stacks/test_dns.py).
    assert secret == {f"{NS}:{k}" for k in SECRET_KEYS if k != "dnsCredentials"}
    plain_text = " ".join(v.value for v in rendered.values() if not v.secret)
    for value in (ADMIN_PASSWORD, MAILBOX_PASSWORD, "PRIVATE KEY", "hetzner-token"):
        assert value not in plain_text
    assert MAILBOX_PASSWORD in json.loads(rendered[f"{NS}:mailboxPasswords"].value).values()
    # And the secrets never show in a repr (logs, tracebacks).
    assert ADMIN_PASSWORD not in repr(valid())


def _set(values: dict[str, Any], key: str, path: list[Any], new: Any) -> None:
    doc = json.loads(values[key])
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    values[key] = json.dumps(doc)


S, M, D = f"{NS}:servers", f"{NS}:mailboxes", f"{NS}:domains"
INVALID = [
    # (stack config key, path inside it or None for the whole value, new value, key named)
    (f"{NS}:workspaceId", None, "", f"{NS}:workspaceId"),
    (f"{NS}:tenantId", None, None, f"{NS}:tenantId"),
    (f"{NS}:stalwartVersion", None, "v0.16.4", f"{NS}:stalwartVersion"),
    (f"{NS}:stalwartVersion", None, "latest", f"{NS}:stalwartVersion"),
    (f"{NS}:acmeEmail", None, "not-an-email", f"{NS}:acmeEmail"),
    (f"{NS}:sshPublicKey", None, "garbage", f"{NS}:sshPublicKey"),
    (f"{NS}:sshPrivateKey", None, "garbage", f"{NS}:sshPrivateKey"),
    (f"{NS}:stalwartAdminPassword", None, "short", f"{NS}:stalwartAdminPassword"),
    (f"{NS}:hetznerToken", None, None, f"{NS}:hetznerToken"),
    (f"{NS}:hostwindsApiKey", None, None, f"{NS}:hostwindsApiKey"),
    (S, None, "{not json", S),
    (S, None, json.dumps({"a": 1}), S),
    (S, [0, "name"], "MX_1", f"{S}[0].name"),
    (S, [1, "name"], "mx1", f"{S}[1].name"),
    (S, [0, "provider"], "vultr", f"{S}[0].provider"),
    (S, [0, "size"], "huge", f"{S}[0].size"),
    (S, [0, "region"], "mars", f"{S}[0].region"),
    (S, [0, "hostname"], "not a host", f"{S}[0].hostname"),
    (S, [1, "hostname"], "mx1.mail.example.net", f"{S}[1].hostname"),
    (S, [1, "ip"], "999.1.1.1", f"{S}[1].ip"),
    (S, [1, "sshUser"], "Bad User", f"{S}[1].sshUser"),
    (S, [1, "sshPort"], 70000, f"{S}[1].sshPort"),
    (S, [1, "sshPort"], "22", f"{S}[1].sshPort"),
    (S, [0, "ip"], "192.0.2.1", f"{S}[0].ip"),
    (S, [0, "colour"], "blue", f"{S}[0].colour"),
    (D, [0, "name"], "not_a_domain", f"{D}[0].name"),
    (D, [0, "dkimSelector"], "bad selector", f"{D}[0].dkimSelector"),
    (D, [0, "dkimAlgorithm"], "dsa", f"{D}[0].dkimAlgorithm"),
    (D, [0, "dkimPublicKey"], "not base64!", f"{D}[0].dkimPublicKey"),
    (f"{NS}:dkimPrivateKeys", None, "{}", f'{NS}:dkimPrivateKeys["example.com"]'),
    (M, [0, "address"], "not-an-address", f"{M}[0].address"),
    (M, [1, "address"], "sales@example.com", f"{M}[1].address"),
    (M, [0, "server"], "nowhere", f"{M}[0].server"),
    (M, [0, "quotaMb"], 0, f"{M}[0].quotaMb"),
    (M, [0, "quotaMb"], 1.5, f"{M}[0].quotaMb"),
    (f"{NS}:mailboxPasswords", None, "{}", f'{NS}:mailboxPasswords["sales@example.com"]'),
    (f"{NS}:catalog", None, "[1]", f"{NS}:catalog"),
]


@pytest.mark.parametrize(("key", "path", "new", "named"), INVALID, ids=[i[3] for i in INVALID])
def test_invalid_value_names_its_key(
    key: str, path: list[Any] | None, new: Any, named: str
) -> None:
    values = stack_values(valid())
    if path is None:
        if new is None:
            values.pop(key, None)
        else:
            values[key] = new
    else:
        _set(values, key, path, new)
    with pytest.raises(ConfigError) as err:
        FleetConfig.from_stack_config(values)
    assert err.value.key == named
    assert named in str(err.value)


def test_short_mailbox_password_names_the_mailbox() -> None:
    config = valid()
    with pytest.raises(ConfigError) as err:
        replace(config, mailboxes=(replace(config.mailboxes[0], password="short"),))
    assert err.value.key == f'{NS}:mailboxPasswords["sales@example.com"]'


def test_mailbox_domain_must_be_a_mail_domain() -> None:
    config = valid()
    moved = replace(config.mailboxes[0], address="sales@elsewhere.net")
    with pytest.raises(ConfigError) as err:
        replace(config, mailboxes=(moved,))
    assert err.value.key == f"{NS}:mailboxes[0].address"
    assert "elsewhere.net" in err.value.reason


def test_malformed_catalog_override_names_the_catalog() -> None:
    with pytest.raises(ConfigError) as err:
        replace(valid(), catalog_overrides={"hetzner": {"sizes": {"starter": {"cpu": "many"}}}})
    assert err.value.key == f"{NS}:catalog"


def test_catalog_override_reaches_the_program() -> None:
    config = replace(
        valid(), catalog_overrides={"hetzner": {"sizes": {"starter": {"type": "cx53"}}}}
    )
    run = evaluate(config)
    [machine] = run.recorder.of_type("hcloud:index/server:Server")
    assert machine.input("serverType") == "cx53"


def test_empty_fleet_is_valid_without_credentials() -> None:
    config = FleetConfig(workspace_id="w", tenant_id="t", domains=(domain(),))
    assert config.servers == ()
