"""Every check of every target, concurrently: each network step holds one slot of a shared
semaphore and each check has its own deadline, so one slow or dead server delays nothing but
itself."""

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import dns.asyncresolver

from probes import delivery, disk, dnsbl, mail_queue, provider, smtp, ssh, stalwart_api, tls
from probes.net import TlsObservation, close, describe, http_get, tls_observe
from probes.types import SEEN_HOST_KEY, Check, CheckResult, ProbeConfig, Status, Target

T = TypeVar("T")


class _Sweep:
    def __init__(self, config: ProbeConfig, now: datetime) -> None:
        self.config = config
        self.now = now
        self.slots = asyncio.Semaphore(config.concurrency)
        self.resolver: dns.asyncresolver.Resolver | None = None
        self.dnsbl_answers: dict[tuple[str, str], asyncio.Future[dnsbl.ZoneAnswer]] = {}

    async def limited(self, factory: Callable[[], Awaitable[T]]) -> T:
        async with self.slots:
            async with asyncio.timeout(self.config.timeout):
                return await factory()

    async def check(
        self, name: Check, factory: Callable[[], Awaitable[CheckResult]]
    ) -> CheckResult:
        try:
            return await factory()
        except TimeoutError:
            status = (
                Status.CRITICAL if name in (Check.REACHABLE, Check.MAIL_SERVER) else Status.UNKNOWN
            )
            return CheckResult(name, status, f"timed out after {self.config.timeout:g}s")
        except Exception as exc:  # a probe bug must not take the sweep down
            return CheckResult(name, Status.UNKNOWN, f"probe error: {describe(exc)}")

    # --- the checks -------------------------------------------------------------------------

    async def reachable(self, t: Target) -> CheckResult:
        port = await self.limited(lambda: self._ssh_port(t))
        c = self.config
        if t.provider != "hetzner" or not t.provider_server_id or not c.hetzner_token:
            return port
        token, server_id = c.hetzner_token, t.provider_server_id
        status, error = await self.limited(
            lambda: provider.hetzner_status(c.hetzner_api_url, token, server_id, c.timeout)
        )
        port.data["provider_status"] = status
        if error:
            return replace(port, detail=f"{port.detail}; {error}")
        if status != "running":
            return replace(
                port,
                status=Status.CRITICAL,
                detail=f"Hetzner reports the server {status}; {port.detail}",
            )
        return replace(port, detail=f"{port.detail}; Hetzner reports it running")

    async def _ssh_port(self, t: Target) -> CheckResult:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(t.address, t.ssh_port)
        except OSError as exc:
            return CheckResult(
                Check.REACHABLE, Status.CRITICAL, f"SSH port {t.ssh_port}: {describe(exc)}"
            )
        try:
            banner = await reader.readline()
        finally:
            await close(writer)
        ms = round((time.perf_counter() - started) * 1000, 1)
        if not banner.startswith(b"SSH-"):
            return CheckResult(
                Check.REACHABLE, Status.CRITICAL, f"port {t.ssh_port} is not SSH", ms
            )
        return CheckResult(Check.REACHABLE, Status.OK, f"SSH answered in {ms} ms", ms)

    async def mail_server(
        self, t: Target, tls_tasks: dict[int, asyncio.Task[TlsObservation]]
    ) -> CheckResult:
        c = self.config
        smtp_task = asyncio.ensure_future(
            self.limited(lambda: smtp.observe(t.address, c.smtp_port, t.hostname))
        )
        ready_task = asyncio.ensure_future(self.limited(lambda: self._ready(t)))
        problems: list[str] = []
        minor: list[str] = []
        try:
            s = await smtp_task
        except TimeoutError:
            s = smtp.SmtpObservation(False, f"SMTP port {c.smtp_port}: timed out")
        if not s.ok:
            problems.append(s.detail)
        else:
            if not s.starttls:
                minor.append("STARTTLS not offered")
            if not s.greeting_names_host:
                minor.append(f"SMTP greeting does not name {t.hostname}")
        for port in (c.submissions_port, c.imaps_port):
            o = await _settled(tls_tasks[port])
            if o is None or not o.handshake:
                problems.append(f"TLS on {port}: {o.error if o else 'timed out'}")
        try:
            ready = await ready_task
        except TimeoutError:
            ready = "timed out"
        if ready:
            problems.append(f"/healthz/ready: {ready}")
        data = {
            "banner": s.banner,
            "starttls": s.starttls,
            "greeting_names_host": s.greeting_names_host,
        }
        if problems:
            return CheckResult(
                Check.MAIL_SERVER, Status.CRITICAL, "; ".join(problems + minor), data=data
            )
        if minor:
            return CheckResult(Check.MAIL_SERVER, Status.WARNING, "; ".join(minor), data=data)
        return CheckResult(
            Check.MAIL_SERVER,
            Status.OK,
            "SMTP, submissions, IMAPS and /healthz/ready answer",
            data=data,
        )

    async def _ready(self, t: Target) -> str:
        """'' when Stalwart says it is ready, else why not."""
        try:
            r = await http_get(
                t.address,
                self.config.https_port,
                "/healthz/ready",
                host=t.hostname,
                ssl_context=self.config.reading_context,
            )
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            return describe(exc)
        return "" if r.status == 200 else f"HTTP {r.status}"

    async def tls(
        self, tls_tasks: dict[int, asyncio.Task[TlsObservation]], t: Target | None = None
    ) -> CheckResult:
        observations = []
        for port, task in tls_tasks.items():
            o = await _settled(task)
            observations.append(o or TlsObservation(port, False, False, "timed out", None))
        managed = await self._managed_certificates(t, observations) if t is not None else None
        return tls.evaluate(observations, self.config.thresholds, self.now, managed)

    async def _managed_certificates(
        self, t: Target, observations: list[TlsObservation]
    ) -> list[dict[str, Any]] | None:
        """v0.16+: the certificates Stalwart holds (x:Certificate/get), beside the handshake:
        a renewed certificate not yet served, or one for another name, shows here. Only with
        credentials and after the HTTPS certificate verified (never sent otherwise)."""
        https = next((o for o in observations if o.port == self.config.https_port), None)
        if (
            not t.admin_password
            or stalwart_api.generation(t.stalwart_version) != "jmap"
            or https is None
            or not https.verified
        ):
            return None
        try:
            return await self.limited(
                lambda: stalwart_api.certificates(
                    t, self.config.https_port, self.config.verifying_context
                )
            )
        except (OSError, ValueError, ssl.SSLError, stalwart_api.ApiError):
            return None

    async def disk(self, t: Target) -> CheckResult:
        if not t.ssh_private_key:
            return CheckResult(Check.DISK, Status.UNKNOWN, "no SSH key for this server")
        target = ssh.SshTarget(t.address, t.ssh_port, t.ssh_user, t.ssh_private_key, t.ssh_host_key)
        cmd = disk.df_command(self.config.disk_path)

        async def go() -> CheckResult:
            try:
                r = await ssh.run(
                    target,
                    cmd,
                    connect_timeout=self.config.ssh_connect_timeout,
                    timeout=self.config.timeout,
                )
            except ssh.HostKeyChanged as exc:
                return CheckResult(Check.DISK, Status.CRITICAL, str(exc), data={"ssh": "host_key"})
            except ssh.SshError as exc:
                return CheckResult(Check.DISK, Status.UNKNOWN, str(exc))
            result = disk.evaluate(
                r.stdout, r.exit_status, self.config.disk_path, self.config.thresholds
            )
            if r.host_key and not t.ssh_host_key:
                result.data[SEEN_HOST_KEY] = r.host_key
            return result

        return await self.limited(go)

    async def queue(self, t: Target) -> CheckResult:
        c = self.config
        return await self.limited(
            lambda: mail_queue.probe(
                t, c.https_port, c.verifying_context, c.queue_page_size, c.thresholds, self.now
            )
        )

    def _dnsbl(self, subject: str, bl: dnsbl.Blocklist) -> asyncio.Future[dnsbl.ZoneAnswer]:
        """One lookup per (list, subject) per run, shared by every server that needs it."""
        key = (bl.zone, subject)
        if key not in self.dnsbl_answers:
            if self.resolver is None:
                self.resolver = dnsbl.make_resolver(
                    self.config.dnsbl_nameservers, self.config.timeout
                )
            resolver, dqs = self.resolver, self.config.dnsbl_dqs_key
            self.dnsbl_answers[key] = asyncio.ensure_future(
                self.limited(partial(dnsbl.lookup, resolver, subject, bl, dqs))
            )
        return self.dnsbl_answers[key]

    async def blocklists(self, t: Target) -> CheckResult:
        addresses = [a for a in (t.address, t.ipv6) if a and dnsbl.is_ip(a)]
        if not addresses:
            return CheckResult(Check.DNSBL, Status.UNKNOWN, "no IP address to look up")
        ip_lists = list(dnsbl.lists(self.config.dnsbl_zones))
        health: dict[str, dnsbl.ListHealth] = {}
        for bl in ip_lists:
            must, must_not = dnsbl.TEST_ENTRIES[bl.kind]
            listed, clean = await asyncio.gather(self._dnsbl(must, bl), self._dnsbl(must_not, bl))
            health[bl.zone] = dnsbl.health_of(bl, listed, clean)
        answers = await asyncio.gather(*(self._dnsbl(a, bl) for a in addresses for bl in ip_lists))
        return dnsbl.evaluate(t.address, list(answers), health)

    async def server(self, t: Target) -> list[CheckResult]:
        c = self.config
        wanted = c.checks
        tls_tasks: dict[int, asyncio.Task[TlsObservation]] = {}
        if wanted & {Check.TLS, Check.MAIL_SERVER}:
            for port in (c.https_port, c.submissions_port, c.imaps_port):
                tls_tasks[port] = asyncio.ensure_future(
                    self.limited(
                        partial(
                            tls_observe,
                            t.address,
                            port,
                            t.hostname,
                            c.verifying_context,
                            c.reading_context,
                        )
                    )
                )
        factories: dict[Check, Callable[[], Awaitable[CheckResult]]] = {
            Check.REACHABLE: lambda: self.reachable(t),
            Check.MAIL_SERVER: lambda: self.mail_server(t, tls_tasks),
            Check.TLS: lambda: self.tls(tls_tasks, t),
            Check.DISK: lambda: self.disk(t),
            Check.QUEUE: lambda: self.queue(t),
            Check.DNSBL: lambda: self.blocklists(t),
            Check.DELIVERY: lambda: self.limited(
                partial(delivery.probe, t, c.https_port, c.verifying_context)
            ),
        }
        chosen = [name for name in Check if name in wanted]
        try:
            return list(await asyncio.gather(*(self.check(n, factories[n]) for n in chosen)))
        finally:
            for task in tls_tasks.values():
                task.cancel()


async def _settled(task: "asyncio.Task[T]") -> T | None:
    try:
        return await asyncio.shield(task)
    except TimeoutError:
        return None


async def probe_many(
    targets: Sequence[Target], config: ProbeConfig, now: datetime | None = None
) -> dict[str, list[CheckResult]]:
    """The results of every check per target key."""
    sweep = _Sweep(config, now or datetime.now(UTC))
    results = await asyncio.gather(*(sweep.server(t) for t in targets))
    return {t.key: r for t, r in zip(targets, results, strict=True)}


async def probe_server(
    target: Target, config: ProbeConfig, now: datetime | None = None
) -> list[CheckResult]:
    return (await probe_many([target], config, now))[target.key]
