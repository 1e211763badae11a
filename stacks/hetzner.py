"""Hetzner Cloud: one SSH key and one firewall per workspace, then per server a Server and the
reverse DNS of both its addresses set to the mail hostname (Gmail rejects mail from an IP whose
PTR does not match: 550-5.7.25)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_hcloud as hcloud

from stacks.catalog import Offer
from stacks.config import FleetConfig, ServerSpec

# Inbound only what the mail server and its administration need: SSH, SMTP (25), submission
# (465 implicit TLS, 587 STARTTLS), IMAPS (993), HTTPS (443: TLS-ALPN-01 ACME challenges and the
# web admin). The management port 8080 stays closed: the scripts reach it over SSH on loopback.
MAIL_PORTS = ("22", "25", "443", "465", "587", "993")
ANYWHERE = ["0.0.0.0/0", "::/0"]


@dataclass
class Host:
    provider_id: pulumi.Output[str]
    ipv4: pulumi.Output[str]
    ipv6: pulumi.Output[str]
    status: pulumi.Output[str]
    # What replacing the machine changes: commands on it must run again.
    identity: pulumi.Output[str]
    resource: pulumi.Resource | None


def labels(config: FleetConfig, server: str | None = None) -> dict[str, str]:
    out = {
        "managed-by": "penguinmails",
        "workspace": config.workspace_id,
        "tenant": config.tenant_id,
    }
    if server:
        out["server"] = server
    return out


def user_data(server: ServerSpec) -> str:
    short = server.hostname.split(".", 1)[0]
    return (
        "#cloud-config\n"
        f"hostname: {short}\n"
        f"fqdn: {server.hostname}\n"
        "prefer_fqdn_over_hostname: true\n"
        "package_update: true\n"
        "packages: [curl, python3, ca-certificates]\n"
    )


class HetznerFleet:
    """The workspace-wide Hetzner resources, created only when a Hetzner server exists."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.provider = hcloud.Provider(
            "hetzner", token=pulumi.Output.secret(config.hetzner_token or "")
        )
        opts = pulumi.ResourceOptions(provider=self.provider)
        ws = config.workspace_id
        self.ssh_key = hcloud.SshKey(
            "ssh-key",
            name=f"penguinmails-{ws}",
            public_key=config.ssh_public_key or "",
            labels=labels(config),
            opts=opts,
        )
        self.firewall = hcloud.Firewall(
            "mail-firewall",
            name=f"penguinmails-{ws}",
            labels=labels(config),
            rules=[
                hcloud.FirewallRuleArgs(
                    direction="in",
                    protocol="tcp",
                    port=port,
                    source_ips=ANYWHERE,
                    description=f"penguinmails tcp/{port}",
                )
                for port in MAIL_PORTS
            ]
            + [hcloud.FirewallRuleArgs(direction="in", protocol="icmp", source_ips=ANYWHERE)],
            opts=opts,
        )

    def server(self, server: ServerSpec, offer: Offer) -> Host:
        opts = pulumi.ResourceOptions(provider=self.provider)
        machine = hcloud.Server(
            server.name,
            name=server.hostname,
            server_type=offer.type,
            image=offer.image or "ubuntu-24.04",
            location=offer.location,
            ssh_keys=[self.ssh_key.id],
            firewall_ids=[self.firewall.id.apply(int)],
            labels=labels(self.config, server.name),
            user_data=user_data(server),
            public_nets=[hcloud.ServerPublicNetArgs(ipv4_enabled=True, ipv6_enabled=True)],
            opts=opts,
        )
        server_id = machine.id.apply(int)
        for family, address in (("v4", machine.ipv4_address), ("v6", machine.ipv6_address)):
            hcloud.Rdns(
                f"{server.name}-ptr-{family}",
                server_id=server_id,
                ip_address=address,
                dns_ptr=server.hostname,
                opts=opts,
            )
        return Host(
            provider_id=machine.id,
            ipv4=machine.ipv4_address,
            ipv6=machine.ipv6_address,
            status=machine.status,
            identity=machine.id,
            resource=machine,
        )
