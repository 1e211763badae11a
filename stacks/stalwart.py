"""Stalwart on every server, through `pulumi_command.remote.Command` over SSH: the pinned install
(hostname, ACME TLS), every mail domain with its DKIM key, and one account per mailbox.

Each Command has `create` and `update` set to the same idempotent action, so a changed input (a new
quota, a rotated password, a new version) re-runs it in place, and `triggers` on the machine's
identity, so a replaced server gets everything again. Secrets only travel on stdin, and what a
command prints is kept secret in the state (`additional_secret_outputs`, C3 in the provisioning
review) and not streamed to the engine's log (`logging=none`): nothing printed by a command can
leak a password into the checkpoint even if a script misbehaves.

The scripts depend on the server's pin (`FleetConfig.version_of`): v0.12-v0.15 speak REST under
`/api`, v0.16+ JMAP at `/jmap/` (stacks/versions.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_command import remote

from stacks import scripts
from stacks.config import DomainSpec, FleetConfig, MailboxSpec, ServerSpec
from stacks.hetzner import MAIL_PORTS, Host
from stacks.versions import generation

# Command outputs may echo what a script printed; keep them encrypted in state.
SECRET_OUTPUTS = ["stdout", "stderr"]


def _opts(depends: list[pulumi.Resource]) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(depends_on=depends, additional_secret_outputs=SECRET_OUTPUTS)


# Dial attempts back off from 100 ms by x1.5 up to 5 s (pulumi-command retry/until.go, C1): 30
# refused dials take about 2 minutes, which a new machine may need before it accepts SSH. The
# domain and account commands run only once the install reached the machine, so they give up
# sooner: a destroy whose server is already gone spends seconds per command when connections are
# refused (under 3 minutes when packets are dropped, at 20 s a dial), not 2 to 10 minutes, before
# the live engine drops the commands from state (automation/live.py `_destroy`).
INSTALL_DIALS = 30
MANAGE_DIALS = 8


def connection(
    server: ServerSpec, host: Host, private_key: pulumi.Output[str], dials: int = INSTALL_DIALS
) -> remote.ConnectionArgs:
    return remote.ConnectionArgs(
        host=host.ipv4,
        user=server.ssh_user,
        port=server.ssh_port,
        private_key=private_key,
        dial_error_limit=dials,
        per_dial_timeout=20,
    )


def _stdin(admin_password: str, **values: str | None) -> pulumi.Output[str]:
    """The command's stdin: the admin password and `values` as one JSON object, secret. Built
    from the plain config values with no `apply`: measured, each layer of Outputs and tasks
    per account (an `apply` on the secret password, or an `Output.all` of per-value secrets)
    was a large share of a fleet's evaluation. Secret, with no dependencies, as before."""
    return pulumi.Output.secret(
        json.dumps({"admin_password": admin_password, **values}, sort_keys=True)
    )


class StalwartServer:
    def __init__(
        self,
        config: FleetConfig,
        server: ServerSpec,
        host: Host,
        private_key: pulumi.Output[str],
        admin_password: str,
    ) -> None:
        self.server = server
        self.host = host
        self.conn = connection(server, host, private_key)
        self.manage_conn = connection(server, host, private_key, MANAGE_DIALS)
        self.admin_password = admin_password
        self.version = config.version_of(server)
        acme_email = config.acme_email or f"postmaster@{server.hostname}"
        # No cloud firewall in front of existing and Hostwinds servers: an nftables one.
        firewall = (
            scripts.nftables(tuple(int(p) for p in MAIL_PORTS), server.ssh_port)
            if server.provider != "hetzner"
            else ""
        )
        install = scripts.as_root(
            scripts.install(self.version, server.hostname, acme_email, firewall),
            server.ssh_user,
        )
        depends = [host.resource] if host.resource is not None else []
        self.install = remote.Command(
            f"{server.name}-stalwart",
            connection=self.conn,
            create=install,
            update=install,
            stdin=_stdin(admin_password),
            triggers=[host.identity],
            logging=remote.Logging.NONE,
            # No PULUMI_COMMAND_STDOUT Setenv that sshd refuses with a warning (C4).
            add_previous_output_in_env=False,
            opts=_opts(depends),
        )
        self.domains: dict[str, remote.Command] = {}

    def _manage(self, action: str, args: Mapping[str, object]) -> str:
        return scripts.manage(action, args, self.version, self.server.hostname)

    def domain(self, domain: DomainSpec) -> remote.Command:
        args = {
            "domain": domain.name,
            "selector": domain.dkim_selector,
            "algorithm": domain.dkim_algorithm,
        }
        script = self._manage("domain", args)
        command = remote.Command(
            f"{self.server.name}-domain-{domain.name}",
            connection=self.manage_conn,
            create=script,
            update=script,
            delete=self._manage("delete-domain", args),
            stdin=_stdin(self.admin_password, dkim_private_key=domain.dkim_private_key),
            triggers=[self.host.identity],
            logging=remote.Logging.NONE,
            # No PULUMI_COMMAND_STDOUT Setenv that sshd refuses with a warning (C4).
            add_previous_output_in_env=False,
            opts=_opts([self.install]),
        )
        self.domains[domain.name] = command
        return command

    def account(self, mailbox: MailboxSpec) -> remote.Command:
        args = {
            "address": mailbox.address,
            "display_name": mailbox.display_name or "",
            "quota_mb": mailbox.quota_mb,
        }
        script = self._manage("account", args)
        return remote.Command(
            f"account-{mailbox.address}",
            connection=self.manage_conn,
            create=script,
            update=script,
            delete=self._manage("delete-account", {"address": mailbox.address}),
            stdin=_stdin(self.admin_password, password=mailbox.password),
            triggers=[self.host.identity],
            logging=remote.Logging.NONE,
            # No PULUMI_COMMAND_STDOUT Setenv that sshd refuses with a warning (C4).
            add_previous_output_in_env=False,
            opts=_opts([self.domains[mailbox.domain]]),
        )


# Per-sender daily caps (warmup and caps, docs/warmup.md) -------------------------------------
#
# Setting names and encodings, read in stalwartlabs/stalwart's source (docs/warmup.md cites them):
# - v0.12-v0.15 (v0.12.0 and v0.15.5: `crates/common/src/config/smtp/queue.rs`
#   `parse_outbound_rate_limiters`, `.../smtp/throttle.rs` `parse_queue_rate_limiter_item`):
#   `queue.limiter.outbound.<id>.enable` (bool), `.key` (`sender`; `parse_queue_rate_limiter_key`),
#   `.match` (an expression over SMTP_QUEUE_HOST_VARS, which include `sender`) and `.rate`
#   (`<count>/<duration>`, utils/src/config/utils.rs `impl ParseValue for Rate`), written with
#   `POST /api/settings` and applied by `GET /api/reload`.
# - v0.16 (v0.16.18: `crates/registry/src/schema/structs.rs` `struct MtaOutboundThrottle`):
#   `x:MtaOutboundThrottle/set` with `description` (required), `enable`, `key` (a
#   `Map<MtaOutboundThrottleKey>`: `{"sender": true}`, types/map.rs), `match` (an `Expression`,
#   `{"else": <condition>}`) and `rate` (`{"count": 1..1000000, "period": <milliseconds>}`: a
#   registry `Duration` is a number of ms, types/duration.rs). A registry write does not rebuild
#   the running queue config: `x:Action/set` `ReloadSettings` does (mapping/action.rs).

DAY_MS = 86_400_000


def throttle_id(address: str) -> str:
    return "pm-" + hashlib.sha256(address.encode()).hexdigest()[:16]


def sender_condition(address: str) -> str:
    """`sender == "<address>"` in Stalwart's expression syntax. Its tokenizer (common/src/expr/
    tokenizer.rs `parse_string`) keeps a backslash in the string, so nothing can be escaped: the
    address goes in double quotes, which a mailbox address cannot hold (config.py `_LOCAL`)."""
    if '"' in address or "\\" in address:
        raise ValueError(f"cannot quote {address!r} in a Stalwart expression")
    return f'sender == "{address}"'


def outbound_throttle(version: str, mailbox: MailboxSpec) -> dict[str, Any] | None:
    """The settings that make Stalwart `version` deliver at most `mailbox.daily_limit` messages
    a day from this sender (its excess waits in the queue), or None without a limit."""
    if mailbox.daily_limit is None:
        return None
    condition = sender_condition(mailbox.address)
    ident = throttle_id(mailbox.address)
    if generation(version) == "jmap":
        return {
            "generation": "jmap",
            "description": f"penguinmails {ident} daily cap",
            "object": {
                "description": f"penguinmails {ident} daily cap",
                "enable": True,
                "key": {"sender": True},
                "match": {"else": condition},
                # count 1..1000000 (structs_impl.rs `Rate::validate`; config.py bounds it)
                "rate": {"count": mailbox.daily_limit, "period": DAY_MS},
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
    stalwart: StalwartServer, mailbox: MailboxSpec, account: remote.Command
) -> remote.Command | None:
    """The mailbox's per-sender daily cap on its server, for the server's own pin (replaced in
    place when it changes)."""
    args = outbound_throttle(stalwart.version, mailbox)
    if args is None:
        return None
    script = stalwart._manage("throttle", args)
    return remote.Command(
        f"throttle-{mailbox.address}",
        connection=stalwart.manage_conn,
        create=script,
        update=script,
        delete=stalwart._manage("delete-throttle", args),
        stdin=_stdin(stalwart.admin_password),
        triggers=[stalwart.host.identity],
        logging=remote.Logging.NONE,
        add_previous_output_in_env=False,
        opts=_opts([account]),
    )
