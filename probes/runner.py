"""Every check of every target, concurrently, each step on its own deadline, so one slow, dead or
hung server delays nothing but itself.

Each step takes a slot to start (`probes.slots`: held while the step works, given back once it
is clearly waiting on a slow or hung server, so those wait on their own deadlines and hold no one
else up). Per server: one kept-alive TLS connection to the HTTPS port carries the certificate
check, `/healthz/ready` and the management API (`probes.https`), and one SSH connection serves
both the reachable check (its banner) and the disk check (`probes.ssh.banner`)."""

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import dns.asyncresolver

from probes import delivery, disk, dnsbl, mail_queue, provider, smtp, ssh, stalwart_api, tls
from probes.https import HttpsConnection
from probes.net import TlsObservation, describe, tls_observe
from probes.slots import Slots
from probes.types import SEEN_HOST_KEY, Check, CheckResult, ProbeConfig, Status, Target

T = TypeVar("T")


class _Sweep:
    def __init__(self, config: ProbeConfig, now: datetime) -> None:
        self.config = config
        self.now = now
        self.slots = Slots(config.concurrency, floor=config.slot_hold, ceiling=config.timeout)
        self.resolver: dns.asyncresolver.Resolver | None = None
        self.dnsbl_answers: dict[tuple[str, str], asyncio.Future[dnsbl.ZoneAnswer]] = {}

    async def limited(
        self, factory: Callable[[], Awaitable[T]], *, deadline: bool = True, first: bool = False
    ) -> T:
        """`factory()` with a slot to start (before the others if `first`) and, unless it keeps
        its own (`deadline=False`), the config's timeout."""
        async with self.slots.held(first=first):
            if not deadline:
                return await factory()
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

    async def reachable(self, t: Target, banner: "asyncio.Task[ssh.Banner]") -> CheckResult:
        port = await self._ssh_port(t, banner)
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

    async def _ssh_port(self, t: Target, banner: "asyncio.Task[ssh.Banner]") -> CheckResult:
        try:
            seen = await asyncio.shield(banner)
        except (OSError, asyncio.IncompleteReadError) as exc:
            return CheckResult(
                Check.REACHABLE, Status.CRITICAL, f"SSH port {t.ssh_port}: {describe(exc)}"
            )
        if not seen.line.startswith(b"SSH-"):
            return CheckResult(
                Check.REACHABLE, Status.CRITICAL, f"port {t.ssh_port} is not SSH", seen.ms
            )
        return CheckResult(Check.REACHABLE, Status.OK, f"SSH answered in {seen.ms} ms", seen.ms)

    async def mail_server(self, t: Target, https: "_Https") -> CheckResult:
        c = self.config
        tls_tasks = https.tls_tasks
        smtp_task = asyncio.ensure_future(
            self.limited(lambda: smtp.observe(t.address, c.smtp_port, t.hostname))
        )
        ready_task = asyncio.ensure_future(self._ready(https))
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

    async def _ready(self, https: "_Https") -> str:
        """'' when Stalwart says it is ready, else why not. Over the kept-alive connection,
        verified or not: nothing secret is sent."""
        if await _settled(https.opened) is None:
            return "timed out"
        try:
            r = await self.limited(
                lambda: https.conn.request("/healthz/ready"), deadline=False, first=True
            )
        except (OSError, ValueError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            return describe(exc)
        return "" if r.status == 200 else f"HTTP {r.status}"

    async def tls(self, t: Target, https: "_Https") -> CheckResult:
        observations = []
        for port, task in https.tls_tasks.items():
            o = await _settled(task)
            observations.append(o or TlsObservation(port, False, False, "timed out", None))
        managed = await self._managed_certificates(t, https, observations)
        return tls.evaluate(observations, self.config.thresholds, self.now, managed)

    async def _managed_certificates(
        self, t: Target, https: "_Https", observations: list[TlsObservation]
    ) -> list[dict[str, Any]] | None:
        """v0.16+: the certificates Stalwart holds (x:Certificate/get), beside the handshake:
        a renewed certificate not yet served, or one for another name, shows here. Only with
        credentials and after the HTTPS certificate verified (never sent otherwise)."""
        served = next((o for o in observations if o.port == self.config.https_port), None)
        if (
            not t.admin_password
            or stalwart_api.generation(t.stalwart_version) != "jmap"
            or served is None
            or not served.verified
        ):
            return None
        try:
            return await self.limited(
                lambda: stalwart_api.certificates(
                    t, self.config.https_port, self.config.verifying_context, https.conn
                ),
                deadline=False,
                first=True,
            )
        except (OSError, ValueError, ssl.SSLError, stalwart_api.ApiError):
            return None

    async def disk(self, t: Target, banner: "asyncio.Task[ssh.Banner] | None") -> CheckResult:
        if not t.ssh_private_key:
            return CheckResult(Check.DISK, Status.UNKNOWN, "no SSH key for this server")
        target = ssh.SshTarget(t.address, t.ssh_port, t.ssh_user, t.ssh_private_key, t.ssh_host_key)
        sock = None
        if banner is not None:
            # The reachable check's connection: its banner is still unread, for asyncssh.
            try:
                sock = (await asyncio.shield(banner)).sock
            except (OSError, asyncio.IncompleteReadError) as exc:
                where = f"ssh {t.address}:{t.ssh_port}"
                return CheckResult(Check.DISK, Status.UNKNOWN, f"{where}: {describe(exc)}")
        # ssh.run keeps its own deadline, counted from here: the banner had its own.
        return await self.limited(lambda: self._df(t, target, sock), deadline=False)

    async def _df(self, t: Target, target: ssh.SshTarget, sock: Any) -> CheckResult:
        c = self.config
        try:
            r = await ssh.run(
                target,
                disk.df_command(c.disk_path),
                connect_timeout=c.ssh_connect_timeout,
                timeout=c.timeout,
                sock=sock,
            )
        except ssh.HostKeyChanged as exc:
            return CheckResult(Check.DISK, Status.CRITICAL, str(exc), data={"ssh": "host_key"})
        except ssh.SshError as exc:
            return CheckResult(Check.DISK, Status.UNKNOWN, str(exc))
        result = disk.evaluate(r.stdout, r.exit_status, c.disk_path, c.thresholds)
        if r.host_key and not t.ssh_host_key:
            result.data[SEEN_HOST_KEY] = r.host_key
        return result

    async def queue(self, t: Target, https: "_Https | None") -> CheckResult:
        c = self.config
        conn = None
        if https is not None:
            if await _settled(https.opened) is None:
                raise TimeoutError
            conn = https.conn
        return await self.limited(
            lambda: mail_queue.probe(
                t,
                c.https_port,
                c.verifying_context,
                c.queue_page_size,
                c.thresholds,
                self.now,
                conn,
            ),
            deadline=conn is None,
            first=conn is not None,
        )

    async def delivery(self, t: Target, https: "_Https | None") -> CheckResult:
        """Stalwart's delivery counters, on the server's kept-alive HTTPS connection."""
        conn = None
        if https is not None:
            if await _settled(https.opened) is None:
                raise TimeoutError
            conn = https.conn
        c = self.config
        return await self.limited(
            lambda: delivery.probe(t, c.https_port, c.verifying_context, conn),
            deadline=conn is None,
            first=conn is not None,
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
            # First: one small query whose answer many servers' checks wait on.
            self.dnsbl_answers[key] = asyncio.ensure_future(
                self.limited(partial(dnsbl.lookup, resolver, subject, bl, dqs), first=True)
            )
        return self.dnsbl_answers[key]

    async def blocklists(self, t: Target) -> CheckResult:
        addresses = [a for a in (t.address, t.ipv6) if a and dnsbl.is_ip(a)]
        if not addresses:
            return CheckResult(Check.DNSBL, Status.UNKNOWN, "no IP address to look up")
        ip_lists = list(dnsbl.lists(self.config.dnsbl_zones))
        # Every lookup asked at once, the server's own beside each list's test entries: an
        # answer is read only once its list has passed them, but waiting for that before
        # asking would queue the server's lookups behind every step asked for meanwhile.
        tests = [self._dnsbl(e, bl) for bl in ip_lists for e in dnsbl.TEST_ENTRIES[bl.kind]]
        asked = [self._dnsbl(a, bl) for a in addresses for bl in ip_lists]
        answers = await asyncio.gather(*tests, *asked)
        health = {
            bl.zone: dnsbl.health_of(bl, answers[2 * i], answers[2 * i + 1])
            for i, bl in enumerate(ip_lists)
        }
        return dnsbl.evaluate(t.address, list(answers[len(tests) :]), health)

    async def server(self, t: Target) -> list[CheckResult]:
        c = self.config
        wanted = c.checks
        https = None
        if wanted & {Check.TLS, Check.MAIL_SERVER} or (
            wanted & {Check.QUEUE, Check.DELIVERY} and t.admin_password
        ):
            https = _Https.start(self, t)
        banner, keep = None, False
        if Check.REACHABLE in wanted:
            # Handed on to the disk check when it will run, else closed once read.
            keep = Check.DISK in wanted and bool(t.ssh_private_key)
            banner = asyncio.ensure_future(
                self.limited(lambda: ssh.banner(t.address, t.ssh_port, keep=keep))
            )
        factories: dict[Check, Callable[[], Awaitable[CheckResult]]] = {
            Check.REACHABLE: lambda: self.reachable(t, _present(banner)),
            Check.MAIL_SERVER: lambda: self.mail_server(t, _present(https)),
            Check.TLS: lambda: self.tls(t, _present(https)),
            Check.DISK: lambda: self.disk(t, banner if keep else None),
            Check.QUEUE: lambda: self.queue(t, https),
            Check.DNSBL: lambda: self.blocklists(t),
            Check.DELIVERY: lambda: self.delivery(t, https),
        }
        chosen = [name for name in Check if name in wanted]
        try:
            return list(await asyncio.gather(*(self.check(n, factories[n]) for n in chosen)))
        finally:
            if https is not None:
                await https.close()
            if banner is not None:
                banner.cancel()
                if banner.done() and not banner.cancelled() and banner.exception() is None:
                    banner.result().sock.close()  # unused by the disk check, or done with


@dataclass
class _Https:
    """A server's TLS observations: the kept-alive HTTPS connection (opened by the task in
    `tls_tasks[https_port]`, also `opened`) and one handshake each on submissions and IMAPS."""

    conn: HttpsConnection
    opened: "asyncio.Task[TlsObservation]"
    tls_tasks: dict[int, "asyncio.Task[TlsObservation]"]

    @classmethod
    def start(cls, sweep: _Sweep, t: Target) -> "_Https":
        c = sweep.config
        conn = HttpsConnection(
            t.address,
            c.https_port,
            t.hostname,
            c.verifying_context,
            c.reading_context,
            timeout=c.timeout,
        )
        # First: the requests that follow on this connection, one at a time, make it each
        # server's longest chain.
        opened = asyncio.ensure_future(sweep.limited(conn.open, first=True))
        tasks = {c.https_port: opened}
        if c.checks & {Check.TLS, Check.MAIL_SERVER}:
            for port in (c.submissions_port, c.imaps_port):
                tasks[port] = asyncio.ensure_future(
                    sweep.limited(
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
        return cls(conn, opened, tasks)

    async def close(self) -> None:
        for task in self.tls_tasks.values():
            task.cancel()
        await self.conn.close()


def _present(value: T | None) -> T:
    assert value is not None  # started by server() for every check that reads it
    return value


async def _settled(task: "asyncio.Task[T]") -> T | None:
    try:
        return await asyncio.shield(task)
    except TimeoutError:
        return None


async def probe_many(
    targets: Sequence[Target],
    config: ProbeConfig,
    now: datetime | None = None,
    on_result: Callable[[str, list[CheckResult]], None] | None = None,
) -> dict[str, list[CheckResult]]:
    """The results of every check per target key; `on_result(key, results)` as each server
    finishes (the sweep hands them to its history writer while the others are probed)."""
    sweep = _Sweep(config, now or datetime.now(UTC))

    async def one(t: Target) -> list[CheckResult]:
        results = await sweep.server(t)
        if on_result is not None:
            on_result(t.key, results)
        return results

    results = await asyncio.gather(*(one(t) for t in targets))
    return {t.key: r for t, r in zip(targets, results, strict=True)}


async def probe_server(
    target: Target, config: ProbeConfig, now: datetime | None = None
) -> list[CheckResult]:
    return (await probe_many([target], config, now))[target.key]
