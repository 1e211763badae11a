"""Hung servers wait on their own deadlines and hold no one else's slot."""

import asyncio
import time
from dataclasses import replace

from probes.runner import probe_many
from probes.slots import Slots
from probes.types import Check, CheckResult, Status, Target
from tests.support.loopback import Lab
from tests.support.pki import CertAuthority
from tests.support.probe_fleet import config_for, start_server

TIMEOUT = 3.0


def test_a_hung_server_delays_the_others_by_nothing_beyond_its_own_budget(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str]
) -> None:
    """Two hung servers (every port accepts and never answers) listed first, then two healthy
    ones, with fewer slots than the hung servers' steps: the healthy servers finish in a
    fraction of the timeout, the hung ones at their timeout and not later."""
    first = start_server(
        lab, ca, address="127.0.0.12", hostname="mx2.example.test", authorized_key=keypair[0]
    )
    ports = first.ports  # one config for all: the same port numbers on every address
    second = start_server(
        lab,
        ca,
        address="127.0.0.13",
        hostname="mx3.example.test",
        authorized_key=keypair[0],
        ports=ports,
    )
    healthy = [first, second]
    hung = ("127.0.0.10", "127.0.0.11")
    for address in hung:
        for port in (ports.ssh, ports.smtp, ports.https, ports.submissions, ports.imaps):
            lab.hang(address, port)
    config = config_for(ports, ca, timeout=TIMEOUT, checks=frozenset(Check) - {Check.DNSBL})
    config = replace(config, concurrency=4, slot_hold=0.2)
    targets = [
        Target(
            key=address,
            address=address,
            hostname=f"mx{i}.example.test",
            ssh_port=ports.ssh,
            ssh_private_key=keypair[1],
            admin_password="admin-secret",
        )
        for i, address in enumerate((*hung, first.address, second.address))
    ]
    finished: dict[str, float] = {}
    started = time.perf_counter()

    def done(key: str, results: list[CheckResult]) -> None:
        finished[key] = time.perf_counter() - started

    results = asyncio.run(probe_many(targets, config, on_result=done))
    for sim in healthy:
        statuses = {r.check: r.status for r in results[sim.address]}
        assert statuses == {c: Status.OK for c in config.checks}, results[sim.address]
        assert finished[sim.address] < TIMEOUT / 2, finished
    for address in hung:
        reachable = next(r for r in results[address] if r.check is Check.REACHABLE)
        assert reachable.status is Status.CRITICAL and "timed out" in reachable.detail
        # Its own budget, once: the disk check gives up with the banner it was waiting for.
        assert TIMEOUT * 0.9 < finished[address] < TIMEOUT * 1.5, finished


def test_a_slow_step_gives_its_slot_back_and_a_quick_one_keeps_it() -> None:
    async def go() -> tuple[float, float]:
        slots = Slots(1, floor=0.1, ceiling=5.0)
        release_first = asyncio.Event()

        async def waiting() -> None:
            async with slots.held():
                await release_first.wait()

        first = asyncio.ensure_future(waiting())
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        async with slots.held():  # only once the first step has held it for `floor`
            got = time.perf_counter() - t0
        release_first.set()
        await first
        return got, slots.hold

    got, hold = asyncio.run(go())
    assert 0.08 < got < 1.0
    assert hold == 0.1  # fewer ended steps than an estimate needs: the floor


def test_the_hold_grows_with_the_steps_it_sees() -> None:
    async def go() -> float:
        slots = Slots(100, floor=0.01, ceiling=5.0)

        async def step(seconds: float) -> None:
            async with slots.held():
                await asyncio.sleep(seconds)

        await asyncio.gather(*(step(0.05) for _ in range(32)))
        return slots.hold

    hold = asyncio.run(go())
    assert 0.14 < hold < 0.5  # three times the median of ~0.05 s steps


def test_the_hold_follows_the_median_when_a_fifth_of_the_steps_are_slow() -> None:
    """A 90th percentile would measure the slow fifth (0.5 s steps) and hold 1.5 s."""

    async def go() -> float:
        slots = Slots(100, floor=0.01, ceiling=5.0)

        async def step(seconds: float) -> None:
            async with slots.held():
                await asyncio.sleep(seconds)

        await asyncio.gather(*(step(0.5 if i % 5 == 0 else 0.02) for i in range(80)))
        return slots.hold

    hold = asyncio.run(go())
    assert 0.05 < hold < 0.5, hold


def test_first_steps_are_let_in_before_the_others_each_in_arrival_order() -> None:
    async def go() -> list[str]:
        slots = Slots(1, floor=5.0, ceiling=5.0)  # no early release: one step at a time
        order: list[str] = []
        gate = asyncio.Event()

        async def step(name: str, first: bool) -> None:
            async with slots.held(first=first):
                order.append(name)
                if name == "holder":
                    await gate.wait()

        holder = asyncio.ensure_future(step("holder", False))
        await asyncio.sleep(0)
        waiting = [
            asyncio.ensure_future(step(name, first))
            for name, first in (("a", False), ("b", True), ("c", False), ("d", True))
        ]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(holder, *waiting)
        return order

    assert asyncio.run(go()) == ["holder", "b", "d", "a", "c"]


def test_a_waiter_cancelled_as_it_is_let_in_passes_the_slot_on() -> None:
    async def go() -> bool:
        slots = Slots(1, floor=5.0, ceiling=5.0)
        gate = asyncio.Event()
        entered = asyncio.Event()

        async def holder() -> None:
            async with slots.held():
                await gate.wait()

        async def later() -> None:
            async with slots.held():
                entered.set()

        h = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        doomed = asyncio.ensure_future(later())
        survivor = asyncio.ensure_future(later())
        await asyncio.sleep(0)
        gate.set()
        await asyncio.sleep(0)  # the holder ends: its slot is handed to `doomed`, not yet run
        assert h.done() and not entered.is_set()
        doomed.cancel()
        await asyncio.wait_for(survivor, 1.0)
        return entered.is_set() and doomed.cancelled()

    assert asyncio.run(go())
