"""The fleet program: stack config in, resources and outputs out. A pure function of its config,
so `pulumi preview` by hand with the config the service wrote shows exactly what it would do."""

from __future__ import annotations

from typing import Any

import pulumi

from stacks.config import FleetConfig, ServerSpec
from stacks.hetzner import HetznerFleet, Host
from stacks.hostwinds.provider import Instance
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
    ssh_key = str(config.catalog.table["hostwinds"].get("ssh_key", "penguinmails"))
    machine = Instance(
        server.name,
        api_key=config.hostwinds_api_key or "",
        location=offer.location,
        product=offer.type,
        image=offer.image or "Ubuntu 24.04",
        hostname=server.hostname,
        ssh_key=ssh_key,
    )
    return Host(
        provider_id=machine.service_id,
        ipv4=machine.main_ip,
        ipv6=machine.ipv6,
        status=machine.status,
        identity=machine.id,
        resource=machine,
    )


def fleet(config: FleetConfig) -> dict[str, Any]:
    """Declare every resource of the fleet; returns (and exports) the outputs."""
    private_key = pulumi.Output.secret(config.ssh_private_key or "")
    admin_password = pulumi.Output.secret(config.stalwart_admin_password or "")
    hetzner = HetznerFleet(config) if any(s.provider == "hetzner" for s in config.servers) else None
    installs: dict[str, StalwartServer] = {}
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
            "stalwart_version": stalwart.install.id.apply(lambda _: config.stalwart_version),
        }
    mailboxes: dict[str, Any] = {}
    for mailbox in config.mailboxes:
        account = installs[mailbox.server].account(mailbox)
        throttle(installs[mailbox.server], config, mailbox, account)
        hostname = config.server(mailbox.server).hostname
        mailboxes[mailbox.address] = {
            "server": mailbox.server,
            "smtp": {"host": hostname, **SUBMISSION, "username": mailbox.address},
            "imap": {"host": hostname, **IMAPS, "username": mailbox.address},
        }
    pulumi.export("servers", servers)
    pulumi.export("mailboxes", mailboxes)
    return {"servers": servers, "mailboxes": mailboxes}
