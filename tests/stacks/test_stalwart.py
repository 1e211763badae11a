"""Stalwart on every server: install, domains with DKIM, one account per mailbox; secrets only
ever on stdin, never in a command line."""

import json

import pytest

from stacks.config import DEFAULT_STALWART_VERSION, FleetConfig
from tests.support.stack_fleet import (
    ADMIN_PASSWORD,
    DKIM_PRIVATE,
    MAILBOX_PASSWORD,
    SSH_PRIVATE,
    domain,
    evaluate,
    fleet_config,
    mailbox,
    server,
)

COMMAND = "command:remote:Command"


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    config = fleet_config(
        servers=(
            server("mx1"),
            server("mx2", provider="existing"),
            server("mx3", provider="hostwinds"),
        ),
        domains=(domain("example.com"), domain("example.org")),
        mailboxes=(
            mailbox("sales@example.com", "mx1", quota_mb=512),
            mailbox("ops@example.org", "mx1"),
            mailbox("info@example.com", "mx2", display_name="Info desk"),
        ),
    )
    return evaluate(config)


def test_one_install_per_server_pinned_with_hostname(run) -> None:  # type: ignore[no-untyped-def]
    installs = {c.name: c for c in run.recorder.of_type(COMMAND) if c.name.endswith("-stalwart")}
    assert set(installs) == {"mx1-stalwart", "mx2-stalwart", "mx3-stalwart"}
    for name, command in installs.items():
        create = command.input("create")
        assert f"PM_VERSION={DEFAULT_STALWART_VERSION}" in create
        assert f"PM_HOSTNAME={name.split('-')[0]}.mail.example.net" in create
        assert "TlsAlpn01" in create  # ACME for the hostname (v0.16: x:AcmeProvider)
        assert "/usr/local/bin/stalwart" in create  # the v0.16 layout
        assert command.input("update") == create  # a changed pin re-runs it in place
        firewall = "table inet penguinmails" in create
        assert firewall == (name != "mx1-stalwart")  # nftables where no Hetzner firewall is


def test_a_rest_pin_gets_the_rest_scripts() -> None:
    config = fleet_config(
        servers=(server("mx1"), server("mx2", stalwart_version="v0.15.5")),
        domains=(domain("example.com"),),
    )
    commands = {c.name: c for c in evaluate(config).recorder.of_type(COMMAND)}
    old = commands["mx2-stalwart"].input("create")
    assert "PM_VERSION=v0.15.5" in old and "/opt/stalwart" in old and "tls-alpn-01" in old
    assert "/api/principal" in commands["mx2-domain-example.com"].input("create")
    new = commands["mx1-domain-example.com"].input("create")
    assert "x:DkimSignature/set" in new and "/api/" not in new
    assert "admin_domain" in new and "mx1.mail.example.net" in new


def test_command_outputs_are_secret_and_not_logged(run) -> None:  # type: ignore[no-untyped-def]
    for command in run.recorder.of_type(COMMAND):
        assert command.input("logging") == "none", command.name
        assert command.input("addPreviousOutputInEnv") is False, command.name


def test_domains_on_every_server_with_their_dkim_selector(run) -> None:  # type: ignore[no-untyped-def]
    domains = [c for c in run.recorder.of_type(COMMAND) if "-domain-" in c.name]
    assert sorted(c.name for c in domains) == sorted(
        f"{s}-domain-{d}" for s in ("mx1", "mx2", "mx3") for d in ("example.com", "example.org")
    )
    for command in domains:
        assert '"selector": "pm1"' in command.input("create")
        assert "delete-domain" in command.input("delete")
        assert json.loads(command.input("stdin"))["dkim_private_key"] == DKIM_PRIVATE


def test_one_account_per_mailbox_on_its_server(run) -> None:  # type: ignore[no-untyped-def]
    accounts = {c.name: c for c in run.recorder.of_type(COMMAND) if c.name.startswith("account-")}
    assert set(accounts) == {
        "account-sales@example.com",
        "account-ops@example.org",
        "account-info@example.com",
    }
    sales = accounts["account-sales@example.com"]
    assert '"quota_mb": 512' in sales.input("create")
    assert "delete-account" in sales.input("delete")
    assert sales.input("connection")["host"] == run.outputs["servers"]["mx1"]["ipv4"]
    info = accounts["account-info@example.com"]
    assert info.input("connection")["host"] == "198.51.100.7"
    assert '"display_name": "Info desk"' in info.input("create")
    assert json.loads(sales.input("stdin")) == {
        "admin_password": ADMIN_PASSWORD,
        "password": MAILBOX_PASSWORD,
    }


def test_secrets_are_secret_and_never_on_a_command_line(run) -> None:  # type: ignore[no-untyped-def]
    commands = run.recorder.of_type(COMMAND)
    assert commands
    for command in commands:
        assert command.is_secret("stdin"), command.name
        assert command.input("connection")["privateKey"] == SSH_PRIVATE
        assert command.is_secret("connection") or _nested_secret(command.inputs["connection"])
        for field in ("create", "update", "delete"):
            text = command.input(field) or ""
            for secret in (ADMIN_PASSWORD, MAILBOX_PASSWORD, SSH_PRIVATE, "BEGIN PRIVATE KEY"):
                assert secret not in text, (command.name, field)


def test_commands_are_replaced_with_their_machine(run) -> None:  # type: ignore[no-untyped-def]
    accounts = {c.name: c for c in run.recorder.of_type(COMMAND)}
    server_id = run.outputs["servers"]["mx1"]["provider_id"]
    assert accounts["account-sales@example.com"].input("triggers") == [server_id]
    assert accounts["mx1-stalwart"].input("triggers") == [server_id]


def _nested_secret(value: object) -> bool:
    from pulumi.runtime.rpc import is_rpc_secret

    if is_rpc_secret(value):
        return True
    if isinstance(value, dict):
        return any(_nested_secret(v) for v in value.values())
    return False


def test_only_the_install_waits_long_for_ssh(run) -> None:  # type: ignore[no-untyped-def]
    for command in run.recorder.of_type(COMMAND):
        limit = command.input("connection")["dialErrorLimit"]
        assert limit == (30 if command.name.endswith("-stalwart") else 8), command.name


def test_a_daily_limit_becomes_a_per_sender_outbound_throttle_for_each_generation() -> None:
    from stacks.stalwart import outbound_throttle, throttle_id

    capped = mailbox("sales@example.com", daily_limit=7)
    assert outbound_throttle("v0.15.5", mailbox("sales@example.com")) is None
    rest = outbound_throttle("v0.12.0", capped)
    assert rest == outbound_throttle("v0.15.5", capped)
    assert rest == {
        "generation": "rest",
        "prefix": f"queue.limiter.outbound.{throttle_id('sales@example.com')}",
        "values": [
            ["enable", "true"],
            ["key", "sender"],
            ["match", 'sender == "sales@example.com"'],
            ["rate", "7/1d"],
        ],
    }
    jmap = outbound_throttle("v0.16.18", capped)
    assert jmap is not None and jmap["generation"] == "jmap"
    assert jmap["object"] == {
        "description": jmap["description"],
        "enable": True,
        "key": {"sender": True},
        "match": {"else": 'sender == "sales@example.com"'},
        "rate": {"count": 7, "period": 86_400_000},  # a registry Duration is milliseconds
    }
    # A local part may hold a quote; Stalwart cannot escape one, so the other quote is used.
    quoted = outbound_throttle("v0.15.5", mailbox("o'neil@example.com", daily_limit=7))
    assert quoted is not None and ["match", 'sender == "o\'neil@example.com"'] in quoted["values"]


def test_the_program_applies_each_capped_mailbox_throttle_on_its_server() -> None:
    config = fleet_config(
        servers=(server("mx1"),),
        domains=(domain("example.com"),),
        mailboxes=(
            mailbox("sales@example.com", "mx1", daily_limit=9),
            mailbox("info@example.com", "mx1"),
        ),
    )
    assert (
        FleetConfig.from_stack_config({k: v.value for k, v in config.to_stack_config().items()})
        .mailboxes[0]
        .daily_limit
        == 9
    )
    run = evaluate(config)
    throttles = {c.name: c for c in run.recorder.of_type(COMMAND) if c.name.startswith("throttle-")}
    assert set(throttles) == {"throttle-sales@example.com"}
    command = throttles["throttle-sales@example.com"]
    assert '"rate": {"count": 9, "period": 86400000}' in command.input("create")  # v0.16 pin
    assert "delete-throttle" in command.input("delete")
    assert json.loads(command.input("stdin")) == {"admin_password": ADMIN_PASSWORD}
