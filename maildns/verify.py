"""Verify planned records, sharing work: one `Checker` per sweep runs each distinct check once
(five inboxes of one domain share one SPF evaluation) on top of the resolver's answer cache."""

import asyncio
import ipaddress
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from maildns import checks, plan
from maildns.checks import RecordCheck, RecordStatus
from maildns.resolver import Outcome, Resolver


@dataclass(frozen=True)
class Target:
    """A record to verify and the server it must lead to."""

    purpose: str
    type: str
    name: str  # as stored: relative to the domain, or absolute with a trailing dot
    value: str
    domain: str
    ip: str
    hostname: str
    ipv6: str | None = None

    @property
    def fqdn(self) -> str:
        return plan.absolute_name(self.name, self.domain)


def _dkim_expectation(value: str) -> tuple[str, str]:
    parsed = checks.tags(plan.txt_join(value))
    return parsed.get("p", ""), parsed.get("k", "rsa")


def _srv_expectation(value: str) -> tuple[str, int]:
    _, _, port, target = value.split()
    return target, int(port)


async def check_target(resolver: Resolver, t: Target) -> RecordCheck:
    if t.purpose == plan.MX:
        return await checks.check_mx(resolver, t.domain, t.ip, t.hostname)
    if t.purpose in (plan.A, plan.AAAA):
        return await checks.check_address(resolver, t.fqdn, t.value)
    if t.purpose == plan.SPF:
        results = [await checks.check_spf(resolver, t.domain, t.ip)]
        if t.ipv6 and f"ip6:{t.ipv6}" in t.value:
            results.append(await checks.check_spf(resolver, t.domain, t.ipv6))
        return next((r for r in results if not r.verified), results[0])
    if t.purpose == plan.DKIM:
        key, algorithm = _dkim_expectation(t.value)
        selector = t.fqdn.removesuffix("." + t.domain).removesuffix("._domainkey")
        return await checks.check_dkim(resolver, t.domain, selector, key, algorithm)
    if t.purpose == plan.DMARC:
        return await checks.check_dmarc(resolver, t.domain)
    if t.purpose == plan.PTR:
        return await checks.check_ptr(resolver, t.ip, t.hostname)
    if t.purpose == plan.MTA_STS:
        return await checks.check_tag_record(resolver, t.fqdn, "STSv1", "id")
    if t.purpose == plan.TLS_RPT:
        return await checks.check_tag_record(resolver, t.fqdn, "TLSRPTv1", "rua")
    if t.purpose in (plan.SRV_SUBMISSIONS, plan.SRV_IMAPS):
        target, port = _srv_expectation(t.value)
        return await checks.check_srv(resolver, t.fqdn, target, port)
    return RecordCheck(RecordStatus.ERROR, f"no check is defined for a {t.purpose!r} record")


class Checker:
    """Runs each distinct check once per instance, whoever asks for it."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._results: dict[Target, asyncio.Task[RecordCheck]] = {}

    def _key(self, t: Target) -> Target:
        # Records whose check does not depend on the value share one result.
        if t.purpose in (plan.DMARC, plan.MX, plan.PTR):
            return Target(t.purpose, t.type, t.name, "", t.domain, t.ip, t.hostname, None)
        return t

    async def check(self, target: Target) -> RecordCheck:
        return await asyncio.shield(self._task(target))

    async def _safe(self, target: Target) -> RecordCheck:
        try:
            return await check_target(self.resolver, target)
        except Exception as exc:  # a bug in one check must not sink the sweep
            return RecordCheck(RecordStatus.ERROR, f"check failed: {type(exc).__name__}: {exc}")

    def _task(self, target: Target) -> asyncio.Task[RecordCheck]:
        key = self._key(target)
        task = self._results.get(key)
        if task is None:
            task = asyncio.ensure_future(self._safe(target))
            self._results[key] = task
        return task

    async def check_all(self, targets: Sequence[Target]) -> list[RecordCheck]:
        """One task per distinct check (not a task per target plus a shield, as `gather` of
        `check` made): the batch waits for its distinct tasks, and a cancelled waiter leaves
        them running for whoever else shares them, as `shield` did."""
        tasks = [self._task(t) for t in targets]
        pending = {t for t in tasks if not t.done()}
        if pending:
            await asyncio.wait(pending)
        return [t.result() for t in tasks]


@dataclass(frozen=True)
class DomainReport:
    domain: str
    ip: str
    hostname: str | None
    results: list[tuple[str, str, bool, RecordCheck]]  # (check, name, required, result)

    @property
    def ok(self) -> bool:
        return all(check.verified for _, _, required, check in self.results if required)


async def check_domain(
    resolver: Resolver,
    domain: str,
    ip: str,
    *,
    hostname: str | None = None,
    dkim_selector: str | None = None,
    dkim_public_key: str | None = None,
    dkim_algorithm: str = "rsa",
) -> DomainReport:
    """The whole-domain check of `penguinmails dns check`: MX, SPF, DMARC, PTR (+ forward
    confirmation), DKIM when a selector is given, MTA-STS and TLS-RPT as recommendations."""
    domain = domain.rstrip(".").lower()
    no_ptr = RecordCheck(
        RecordStatus.MISSING, f"{ip} has no PTR record and no --hostname was given"
    )
    if hostname is None:
        ptr = await resolver.query(ipaddress.ip_address(ip).reverse_pointer, "PTR")
        hostname = next(iter(ptr.targets()), None)
        if ptr.outcome is Outcome.ERROR:
            no_ptr = RecordCheck(RecordStatus.ERROR, ptr.describe())
    jobs: list[tuple[str, str, bool, asyncio.Future[RecordCheck]]] = []

    def add(label: str, name: str, required: bool, coro: Coroutine[Any, Any, RecordCheck]) -> None:
        jobs.append((label, name, required, asyncio.ensure_future(coro)))

    add("MX", domain, True, checks.check_mx(resolver, domain, ip, hostname or "<mail host>"))
    add("SPF", domain, True, checks.check_spf(resolver, domain, ip))
    add("DMARC", f"_dmarc.{domain}", True, checks.check_dmarc(resolver, domain))
    if hostname:
        add("PTR", ip, True, checks.check_ptr(resolver, ip, hostname))
    if dkim_selector:
        add(
            "DKIM",
            f"{dkim_selector}._domainkey.{domain}",
            True,
            checks.check_dkim(resolver, domain, dkim_selector, dkim_public_key, dkim_algorithm),
        )
    add(
        "MTA-STS",
        f"_mta-sts.{domain}",
        False,
        checks.check_tag_record(resolver, f"_mta-sts.{domain}", "STSv1", "id"),
    )
    add(
        "TLS-RPT",
        f"_smtp._tls.{domain}",
        False,
        checks.check_tag_record(resolver, f"_smtp._tls.{domain}", "TLSRPTv1", "rua"),
    )
    results = [(label, name, req, await fut) for label, name, req, fut in jobs]
    if not hostname:
        results.append(("PTR", ip, True, no_ptr))
    return DomainReport(domain, ip, hostname, results)
