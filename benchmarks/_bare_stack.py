"""The baseline for `benchmarks stacks`: a bare Pulumi program of the fleet program's shape (the
same resource types, names, counts and dependencies: a provider, an SSH key and a firewall, per
server a Server, two Rdns, an install and a domain Command, per mailbox an account Command),
built from plain pulumi_hcloud and pulumi_command resources with literal inputs and none of our
logic, evaluated under the same mock runtime as the sandbox: a fresh thread and event loop,
`set_mocks`, `run_pulumi_func`, and the same collector pause (automation/collector.py); it is
also timed without that pause, as a bare program runs by default."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks


class BareMocks(Mocks):
    """Echoes the inputs with an id; servers get addresses (what the Rdns read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        with self._lock:
            self.count += 1
            n = self.count
        out = dict(args.inputs)
        if args.typ == "hcloud:index/server:Server":
            out.update(
                ipv4Address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                ipv6Address=f"2001:db8:{n:x}::1",
                status="running",
            )
        return str(n), out


def bare_program(servers: int, mailboxes: int) -> Callable[[], None]:
    def program() -> None:
        import pulumi
        import pulumi_hcloud as hcloud
        from pulumi_command import remote

        provider = hcloud.Provider("hetzner", token=pulumi.Output.secret("token"))
        opts = pulumi.ResourceOptions(provider=provider)
        key = hcloud.SshKey("ssh-key", name="k", public_key="ssh-ed25519 AAAA", opts=opts)
        firewall = hcloud.Firewall(
            "mail-firewall",
            name="fw",
            rules=[
                hcloud.FirewallRuleArgs(
                    direction="in", protocol="tcp", port="25", source_ips=["0.0.0.0/0"]
                )
            ],
            opts=opts,
        )
        private_key = pulumi.Output.secret("private-key")
        out: dict[str, Any] = {}
        for i in range(servers):
            machine = hcloud.Server(
                f"mx{i}",
                name=f"mx{i}.mail.example.net",
                server_type="cx23",
                image="ubuntu-24.04",
                location="fsn1",
                ssh_keys=[key.id],
                firewall_ids=[firewall.id.apply(int)],
                opts=opts,
            )
            server_id = machine.id.apply(int)
            for family, address in (("v4", machine.ipv4_address), ("v6", machine.ipv6_address)):
                hcloud.Rdns(
                    f"mx{i}-ptr-{family}",
                    server_id=server_id,
                    ip_address=address,
                    dns_ptr=f"mx{i}.mail.example.net",
                    opts=opts,
                )
            conn = remote.ConnectionArgs(
                host=machine.ipv4_address, user="root", private_key=private_key
            )
            install = remote.Command(
                f"mx{i}-stalwart",
                connection=conn,
                create="install",
                triggers=[machine.id],
                opts=pulumi.ResourceOptions(depends_on=[machine]),
            )
            domain = remote.Command(
                f"mx{i}-domain-example.com",
                connection=conn,
                create="domain",
                stdin=pulumi.Output.secret("dkim"),
                triggers=[machine.id],
                opts=pulumi.ResourceOptions(depends_on=[install]),
            )
            for j in range(mailboxes):
                remote.Command(
                    f"account-u{i}-{j}@example.com",
                    connection=conn,
                    create="account",
                    stdin=pulumi.Output.secret("password"),
                    triggers=[machine.id],
                    opts=pulumi.ResourceOptions(depends_on=[domain]),
                )
            out[f"mx{i}"] = {"ipv4": machine.ipv4_address, "id": machine.id}
        pulumi.export("servers", out)

    return program


def run_bare(servers: int, mailboxes: int, *, collector_paused: bool = True) -> int:
    """Evaluate the bare program once; the number of resources it registered. With
    `collector_paused` under the sandbox's own collector pause (the same runtime as ours),
    without it as a bare program runs by default."""
    from pulumi.runtime import set_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from automation.collector import paused

    mocks = BareMocks()
    box: dict[str, BaseException] = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            set_mocks(mocks, project="penguinmails", stack="bare", preview=False)
            if collector_paused:
                with paused():
                    _sync_await(run_pulumi_func(bare_program(servers, mailboxes)))
            else:
                _sync_await(run_pulumi_func(bare_program(servers, mailboxes)))
        except BaseException as exc:
            box["error"] = exc
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="bare-program", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return mocks.count
