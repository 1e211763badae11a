"""The fleet program: stack config in, resources and outputs out. A pure function of its config,
so `pulumi preview` by hand with the config the service wrote shows exactly what it would do."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks import dns
from stacks.config import FleetConfig, ServerSpec
from stacks.hetzner import HetznerFleet, Host
from stacks.hostwinds.provider import Instance, Ready
from stacks.stalwart import StalwartServer, throttle

SUBMISSION = {"port": 465, "security": "tls"}
IMAPS = {"port": 993, "security": "tls"}


def _existing(server: ServerSpec) -> Host:
    ip = server.ip or ""
    v6 = ip if ":" in ip else ""
    return Host(
        provider_id=pulumi.Output.from_input(f"existing:{ip}"),
        ipv4=pulumi.Output.from_input(ip),
        ipv6=pulumi.Output.from_input(v6),
        status=pulumi.Output.from_input("running"),
        identity=pulumi.Output.from_input(f"{ip}:{server.ssh_port}"),
        resource=None,
    )


def _hostwinds(config: FleetConfig, server: ServerSpec) -> Host:
    offer = config.catalog.offer(server.provider, server.size, server.region)
    table = config.catalog.table["hostwinds"]
    api_key = config.hostwinds_api_key or ""
    machine = Instance(
        server.name,
        api_key=api_key,
        location=offer.location,
        product=offer.type,
        image=offer.image or "Ubuntu 24.04",
        hostname=server.hostname,
        # The workspace's own key, the one the SSH connection uses (kit/sshkeys.py).
        ssh_key_name=f"penguinmails-{config.workspace_id}",
        ssh_public_key=config.ssh_public_key or "",
    )
    ready = Ready(
        f"{server.name}-ready",
        api_key=api_key,
        service_id=machine.service_id,
        hostname=server.hostname,
        rdns_action=str(table.get("rdns_action") or ""),
    )
    ready.ptr.apply(
        lambda ptr: pulumi.log.warn(f"{server.name}: PTR {ptr}") if ptr != "set" else None
    )
    return Host(
        provider_id=machine.service_id,
        ipv4=ready.main_ip,
        ipv6=ready.ipv6,
        status=ready.status,
        identity=machine.id,
        resource=ready,
    )


def _version_output(stalwart: StalwartServer) -> pulumi.Output[str]:
    version = stalwart.version
    return stalwart.install.id.apply(lambda _: version)


def fleet(config: FleetConfig) -> dict[str, Any]:
    """Declare every resource of the fleet; returns (and exports) the outputs."""
    private_key = pulumi.Output.secret(config.ssh_private_key or "")
    admin_password = config.stalwart_admin_password or ""  # made secret in each command's stdin
    hetzner = HetznerFleet(config) if any(s.provider == "hetzner" for s in config.servers) else None
    installs: dict[str, StalwartServer] = {}
    hosts: list[pulumi.Resource | None] = []
    servers: dict[str, Any] = {}
    for server in config.servers:
        if server.provider == "hetzner":
            assert hetzner is not None
            host = hetzner.server(
                server, config.catalog.offer(server.provider, server.size, server.region)
            )
        elif server.provider == "hostwinds":
            host = _hostwinds(config, server)
        else:
            host = _existing(server)
        hosts.append(host.resource)
        stalwart = StalwartServer(config, server, host, private_key, admin_password)
        for domain in config.domains:
            stalwart.domain(domain)
        installs[server.name] = stalwart
        servers[server.name] = {
            "provider": server.provider,
            "provider_id": host.provider_id,
            "ipv4": host.ipv4,
            "ipv6": host.ipv6,
            "hostname": server.hostname,
            "status": host.status,
            "stalwart_version": _version_output(stalwart),
        }
    mailboxes: dict[str, Any] = {}
    for mailbox in config.mailboxes:
        account = installs[mailbox.server].account(mailbox)
        throttle(installs[mailbox.server], mailbox, account)
        hostname = installs[mailbox.server].server.hostname
        mailboxes[mailbox.address] = {
            "server": mailbox.server,
            "smtp": {"host": hostname, **SUBMISSION, "username": mailbox.address},
            "imap": {"host": hostname, **IMAPS, "username": mailbox.address},
        }
    # After the servers: a record names their addresses, which exist only once they do.
    records = dns.records(config, [h for h in hosts if h is not None])
    pulumi.export("servers", servers)
    pulumi.export("mailboxes", mailboxes)
    pulumi.export("dns", records)
    return {"servers": servers, "mailboxes": mailboxes, "dns": records}
