"""The Hetzner part of the program, evaluated under Pulumi's mock runtime."""

from stacks.hetzner import MAIL_PORTS
from tests.support.stack_fleet import HETZNER_TOKEN, evaluate, fleet_config, mailbox, server

SERVER = "hcloud:index/server:Server"
RDNS = "hcloud:index/rdns:Rdns"
FIREWALL = "hcloud:index/firewall:Firewall"


def test_firewall_opens_only_the_mail_and_admin_ports() -> None:
    run = evaluate(fleet_config(servers=(server("mx1"),)))
    [firewall] = run.recorder.of_type(FIREWALL)
    rules = firewall.input("rules")
    tcp = sorted(int(r["port"]) for r in rules if r["protocol"] == "tcp")
    assert tcp == [22, 25, 443, 465, 587, 993]
    assert sorted(tcp) == sorted(int(p) for p in MAIL_PORTS)
    assert all(r["direction"] == "in" for r in rules)
    assert {r["protocol"] for r in rules} == {"tcp", "icmp"}
    # The firewall is attached to the server.
    [machine] = run.recorder.of_type(SERVER)
    assert machine.input("firewallIds") == [int(firewall.id)]


def test_ptr_of_both_addresses_is_the_hostname() -> None:
    run = evaluate(fleet_config(servers=(server("mx1", hostname="mx1.mail.example.net"),)))
    [machine] = run.recorder.of_type(SERVER)
    records = {r.name: r for r in run.recorder.of_type(RDNS)}
    assert set(records) == {"mx1-ptr-v4", "mx1-ptr-v6"}
    out = run.outputs["servers"]["mx1"]
    assert records["mx1-ptr-v4"].input("ipAddress") == out["ipv4"]
    assert records["mx1-ptr-v6"].input("ipAddress") == out["ipv6"]
    for record in records.values():
        assert record.input("dnsPtr") == "mx1.mail.example.net"
        assert record.input("serverId") == int(out["provider_id"])
    assert machine.input("name") == "mx1.mail.example.net"


def test_server_type_location_image_labels_and_user_data() -> None:
    config = fleet_config(
        servers=(
            server("mx1", size="professional", region="eu-central"),
            server("mx2", size="business", region="us-east"),
        )
    )
    run = evaluate(config)
    machines = {r.name: r for r in run.recorder.of_type(SERVER)}
    assert machines["mx1"].input("serverType") == "cx33"
    assert machines["mx1"].input("location") == "fsn1"
    # CX is sold in the EU only: Ashburn gets the AMD line.
    assert machines["mx2"].input("serverType") == "cpx42"
    assert machines["mx2"].input("location") == "ash"
    for name, machine in machines.items():
        assert machine.input("image") == "ubuntu-24.04"
        assert machine.input("labels") == {
            "managed-by": "penguinmails",
            "workspace": config.workspace_id,
            "tenant": config.tenant_id,
            "server": name,
        }
        assert f"fqdn: {name}.mail.example.net" in machine.input("userData")
        assert not machine.input("serverType").startswith(("cx22", "cx32", "cx42", "cx52"))


def test_one_ssh_key_and_firewall_per_workspace_and_token_is_secret() -> None:
    run = evaluate(fleet_config(servers=(server("mx1"), server("mx2"))))
    [key] = run.recorder.of_type("hcloud:index/sshKey:SshKey")
    assert key.input("publicKey").startswith("ssh-ed25519 ")
    assert len(run.recorder.of_type(FIREWALL)) == 1
    [provider] = run.recorder.of_type("pulumi:providers:hcloud")
    assert provider.is_secret("token")
    assert provider.input("token") == HETZNER_TOKEN
    for machine in run.recorder.of_type(SERVER):
        assert machine.input("sshKeys") == [key.id]


def test_no_hetzner_resources_without_hetzner_servers() -> None:
    run = evaluate(fleet_config(servers=(server("mx1", provider="existing"),)))
    assert not [
        r
        for r in run.recorder.resources
        if r.type.startswith(("hcloud", "pulumi:providers:hcloud"))
    ]


def test_outputs_per_server_and_mailbox() -> None:
    config = fleet_config(servers=(server("mx1"),), mailboxes=(mailbox("sales@example.com"),))
    out = evaluate(config).outputs
    mx1 = out["servers"]["mx1"]
    assert mx1["hostname"] == "mx1.mail.example.net"
    assert mx1["status"] == "running"
    assert mx1["stalwart_version"] == config.stalwart_version
    assert mx1["provider_id"].isdigit()
    assert mx1["ipv4"].startswith("192.0.2.")
    endpoints = out["mailboxes"]["sales@example.com"]
    assert endpoints["smtp"] == {
        "host": "mx1.mail.example.net",
        "port": 465,
        "security": "tls",
        "username": "sales@example.com",
    }
    assert endpoints["imap"]["port"] == 993
