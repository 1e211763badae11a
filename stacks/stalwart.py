"""Stalwart on every server, through `pulumi_command.remote.Command` over SSH: the pinned install
(hostname, ACME TLS), every mail domain with its DKIM key, and one account per mailbox.

Each Command has `create` and `update` set to the same idempotent action, so a changed input (a new
quota, a rotated password, a new version) re-runs it in place, and `triggers` on the machine's
identity, so a replaced server gets everything again. Secrets only travel on stdin."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
from pulumi_command import remote

from stacks import scripts
from stacks.config import DomainSpec, FleetConfig, MailboxSpec, ServerSpec
from stacks.hetzner import Host


def connection(
    server: ServerSpec, host: Host, private_key: pulumi.Output[str]
) -> remote.ConnectionArgs:
    return remote.ConnectionArgs(
        host=host.ipv4,
        user=server.ssh_user,
        port=server.ssh_port,
        private_key=private_key,
        # A new machine takes a minute or two to accept SSH.
        dial_error_limit=30,
        per_dial_timeout=20,
    )


def _stdin(payload: dict[str, pulumi.Input[str]]) -> pulumi.Output[str]:
    return pulumi.Output.secret(
        pulumi.Output.all(**payload).apply(lambda v: json.dumps(v, sort_keys=True))
    )


class StalwartServer:
    def __init__(
        self,
        config: FleetConfig,
        server: ServerSpec,
        host: Host,
        private_key: pulumi.Output[str],
        admin_password: pulumi.Output[str],
    ) -> None:
        self.server = server
        self.host = host
        self.conn = connection(server, host, private_key)
        self.admin_password = admin_password
        acme_email = config.acme_email or f"postmaster@{server.hostname}"
        install = scripts.as_root(
            scripts.install(config.stalwart_version, server.hostname, acme_email), server.ssh_user
        )
        depends = [host.resource] if host.resource is not None else []
        self.install = remote.Command(
            f"{server.name}-stalwart",
            connection=self.conn,
            create=install,
            update=install,
            stdin=_stdin({"admin_password": admin_password}),
            triggers=[host.identity],
            opts=pulumi.ResourceOptions(depends_on=depends),
        )
        self.domains: dict[str, remote.Command] = {}

    def domain(self, domain: DomainSpec) -> remote.Command:
        args = {
            "domain": domain.name,
            "selector": domain.dkim_selector,
            "algorithm": domain.dkim_algorithm,
        }
        command = remote.Command(
            f"{self.server.name}-domain-{domain.name}",
            connection=self.conn,
            create=scripts.manage("domain", args),
            update=scripts.manage("domain", args),
            delete=scripts.manage("delete-domain", args),
            stdin=_stdin(
                {
                    "admin_password": self.admin_password,
                    "dkim_private_key": pulumi.Output.secret(domain.dkim_private_key),
                }
            ),
            triggers=[self.host.identity],
            opts=pulumi.ResourceOptions(depends_on=[self.install]),
        )
        self.domains[domain.name] = command
        return command

    def account(self, mailbox: MailboxSpec) -> remote.Command:
        args = {
            "address": mailbox.address,
            "display_name": mailbox.display_name or "",
            "quota_mb": mailbox.quota_mb,
        }
        return remote.Command(
            f"account-{mailbox.address}",
            connection=self.conn,
            create=scripts.manage("account", args),
            update=scripts.manage("account", args),
            delete=scripts.manage("delete-account", {"address": mailbox.address}),
            stdin=_stdin(
                {
                    "admin_password": self.admin_password,
                    "password": pulumi.Output.secret(mailbox.password),
                }
            ),
            triggers=[self.host.identity],
            opts=pulumi.ResourceOptions(depends_on=[self.domains[mailbox.domain]]),
        )


# Per-sender daily caps (warmup and caps, docs/warmup.md) -------------------------------------
#
# Kept in these two functions so the Stalwart generations can be merged without touching the
# rest. Setting names, from Stalwart's source and docs:
# - v0.12-v0.15 (`crates/common/src/config/smtp/queue.rs`, `parse_outbound_rate_limiters`; the
#   v0.11.4 changelog renamed `queue.throttle.*` to it): `queue.limiter.outbound.<id>.key`
#   (`sender`), `.match` (an expression over the queue variables, `sender`), `.rate`
#   (`<count>/<period>`) and `.enable`, written with `POST /api/settings` and applied by
#   `GET /api/reload`.
# - v0.16 (registry object `MtaOutboundThrottle`, website `docs/ref/object/
#   mta-outbound-throttle.md`): `x:MtaOutboundThrottle/set` with `description`, `enable`,
#   `key` (MtaOutboundThrottleKey `sender`), `match` (`{"else": <condition>}`) and
#   `rate` (`{"count": 1..1000000, "period": <duration>}`).


def _generation(version: str) -> tuple[int, int]:
    parts = version.lstrip("v").split(".")
    return int(parts[0]), int(parts[1])


def throttle_id(address: str) -> str:
    return "pm-" + hashlib.sha256(address.encode()).hexdigest()[:16]


def outbound_throttle(version: str, mailbox: MailboxSpec) -> dict[str, Any] | None:
    """The settings that make Stalwart `version` deliver at most `mailbox.daily_limit` messages
    a day from this sender (its excess waits in the queue), or None without a limit."""
    if mailbox.daily_limit is None:
        return None
    address = mailbox.address.replace("\\", "\\\\").replace("'", "\\'")
    condition = f"sender == '{address}'"
    ident = throttle_id(mailbox.address)
    if _generation(version) >= (0, 16):
        return {
            "generation": "jmap",
            "description": f"penguinmails {ident} daily cap",
            "object": {
                "description": f"penguinmails {ident} daily cap",
                "enable": True,
                "key": {"sender": True},
                "match": {"else": condition},
                "rate": {"count": mailbox.daily_limit, "period": "1d"},
            },
        }
    return {
        "generation": "rest",
        "prefix": f"queue.limiter.outbound.{ident}",
        "values": [
            ["enable", "true"],
            ["key", "sender"],
            ["match", condition],
            ["rate", f"{mailbox.daily_limit}/1d"],
        ],
    }


def throttle(
    stalwart: StalwartServer, config: FleetConfig, mailbox: MailboxSpec, account: remote.Command
) -> remote.Command | None:
    """The mailbox's per-sender daily cap on its server (replaced in place when it changes)."""
    args = outbound_throttle(config.stalwart_version, mailbox)
    if args is None:
        return None
    return remote.Command(
        f"throttle-{mailbox.address}",
        connection=stalwart.conn,
        create=scripts.manage("throttle", args),
        update=scripts.manage("throttle", args),
        delete=scripts.manage("delete-throttle", args),
        stdin=_stdin({"admin_password": stalwart.admin_password}),
        triggers=[stalwart.host.identity],
        opts=pulumi.ResourceOptions(depends_on=[account]),
    )
