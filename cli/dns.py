"""dns check-spf, dns check, dns sweep. The checks need no database: they only ask DNS
(PENGUINMAILS_DNS_NAMESERVERS, or --nameservers), and say which nameserver answered them.

Exit status of the checks: 0 pass; 1 the check ran and did not pass (for check-spf any result but
`pass`: fail, softfail, neutral, none, permerror); 2 the check could not run: bad input, or no
nameserver answered (check-spf's `temperror`; for `dns check`, not one query answered).
`check-spf --batch` exits 0 once every line is answered (each line carries its result)."""

import argparse
import asyncio
import ipaddress
import json
import sys
from collections.abc import Iterator
from typing import Any

import dns.rcode

from kit.errors import ValidationFailed
from maildns.resolver import Resolver, parse_nameservers, rcode_text
from maildns.spf import SpfOutcome, SpfResult, check_host
from maildns.verify import DomainReport, check_domain
from maildns.wire import Reply
from settings import get_settings

BATCH_CHUNK = 1000  # lines evaluated together in --batch; output stays in input order
PASSED, NOT_PASSED, COULD_NOT_RUN = 0, 1, 2


class ReportingResolver(Resolver):
    """The resolver that remembers which nameservers answered and which did not (and why), so a
    result such as "does not exist" names who said so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered: set[tuple[str, int]] = set()
        self.failed: dict[tuple[str, int], str] = {}

    async def _udp(self, server: tuple[str, int], question: bytes) -> Reply:
        try:
            reply = await super()._udp(server, question)
        except TimeoutError:
            self.failed[server] = f"no answer within {self.timeout:g}s"
            raise
        except OSError as exc:
            self.failed[server] = str(exc.strerror or exc)
            raise
        if reply.rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
            self.failed[server] = f"answered {rcode_text(reply.rcode)}"
        else:
            self.answered.add(server)
        return reply

    def report(self) -> dict[str, Any]:
        return {
            "asked": [_hostport(s) for s in self.nameservers],
            "answered": [_hostport(s) for s in self.nameservers if s in self.answered],
            "failed": {
                _hostport(s): why for s, why in self.failed.items() if s not in self.answered
            },
        }

    def source(self) -> str:
        """Who the answers came from, for a line of output."""
        answered = [_hostport(s) for s in self.nameservers if s in self.answered]
        if answered:
            return f"according to nameserver {', '.join(answered)}"
        failed = "; ".join(f"{_hostport(s)}: {why}" for s, why in self.failed.items())
        return f"no nameserver answered ({failed or ', '.join(self.report()['asked'])})"


def _hostport(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolver(args: argparse.Namespace) -> ReportingResolver:
    s = get_settings()
    return ReportingResolver(
        parse_nameservers(args.nameservers or s.dns_nameservers),
        timeout=s.dns_timeout_seconds,
        attempts=s.dns_attempts,
        concurrency=s.dns_concurrency,
    )


def _valid_ip(value: str, field: str = "ip") -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise ValidationFailed(f"{value!r} is not an IP address", field=field) from exc


async def _one_line(resolver: Resolver, line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
        if not isinstance(item, dict):
            raise ValueError("each line must be a JSON object")
        ip = _valid_ip(str(item["ip"]))
        domain = str(item.get("domain") or "")
        sender = str(item.get("sender") or "")
        if not domain:
            domain = sender.rpartition("@")[2] or str(item.get("helo") or "")
        if not domain:
            raise ValueError("a domain (or a sender or helo to take it from) is required")
        outcome = await check_host(resolver, ip, domain, sender, str(item.get("helo") or ""))
    except (ValueError, KeyError, ValidationFailed) as exc:
        message = exc.message if isinstance(exc, ValidationFailed) else str(exc)
        return {"result": "error", "error": f"bad input line: {message}"}
    return {"ip": ip, **outcome.as_dict()}


def _chunks(stream: Any) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in stream:
        if line.strip():
            chunk.append(line)
        if len(chunk) >= BATCH_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _batch(args: argparse.Namespace) -> int:
    async with _resolver(args) as resolver:
        for chunk in _chunks(sys.stdin):
            results = await asyncio.gather(*(_one_line(resolver, line) for line in chunk))
            for result in results:
                sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
    return 0


async def _single(args: argparse.Namespace) -> tuple[SpfOutcome, ReportingResolver]:
    ip = _valid_ip(args.ip)
    resolver = _resolver(args)
    async with resolver:
        outcome = await check_host(resolver, ip, args.domain, args.sender or "", args.helo or "")
        return outcome, resolver


def spf_exit_status(result: SpfResult) -> int:
    if result is SpfResult.PASS:
        return PASSED
    return COULD_NOT_RUN if result is SpfResult.TEMPERROR else NOT_PASSED


def _check_spf(args: argparse.Namespace) -> int:
    if args.batch:
        return asyncio.run(_batch(args))
    if not args.ip or not args.domain:
        raise ValidationFailed("--ip and --domain are required (or --batch)", field="ip")
    outcome, resolver = asyncio.run(_single(args))
    if args.json:
        print(json.dumps({**outcome.as_dict(), "nameservers": resolver.report()}))
        return spf_exit_status(outcome.result)
    print(outcome.result.value)
    print(f"  {outcome.reason}")
    if outcome.explanation:
        print(f"  explanation: {outcome.explanation}")
    print(f"  DNS-querying terms: {outcome.lookups}/10, void lookups: {outcome.void_lookups}/2")
    print(f"  {resolver.source()}")
    return spf_exit_status(outcome.result)


async def _domain(args: argparse.Namespace) -> tuple[DomainReport, ReportingResolver]:
    ip = _valid_ip(args.ip)
    resolver = _resolver(args)
    async with resolver:
        report = await check_domain(
            resolver,
            args.domain,
            ip,
            hostname=args.hostname,
            dkim_selector=args.dkim_selector,
            dkim_public_key=args.dkim_key,
            dkim_algorithm=args.dkim_algorithm,
        )
        return report, resolver


def _check(args: argparse.Namespace) -> int:
    report, resolver = asyncio.run(_domain(args))
    status = (PASSED if report.ok else NOT_PASSED) if resolver.answered else COULD_NOT_RUN
    if args.json:
        print(
            json.dumps(
                {
                    "domain": report.domain,
                    "ip": report.ip,
                    "hostname": report.hostname,
                    "ok": report.ok,
                    "nameservers": resolver.report(),
                    "checks": [
                        {
                            "check": label,
                            "name": name,
                            "required": required,
                            "status": check.status.value,
                            "detail": check.detail,
                            "found": list(check.found),
                        }
                        for label, name, required, check in report.results
                    ],
                }
            )
        )
        return status
    asked = ", ".join(resolver.report()["asked"])
    print(
        f"{report.domain} for {report.ip} (mail host {report.hostname or 'unknown'}), "
        f"asking nameserver {asked}"
    )
    source = resolver.source()
    for label, _, required, check in report.results:
        extra = "" if required else " (recommended)"
        said = "" if check.verified else f" [{source}]"
        print(f"  {label:<8} {check.status.value:<9} {check.detail}{extra}{said}")
    if status == COULD_NOT_RUN:
        print(f"the checks could not run: {source}")
    else:
        print("all required checks pass" if report.ok else "some required checks fail")
    return status


def _sweep(_: argparse.Namespace) -> int:
    from cli.processes import prepare
    from scheduler.jobs.dns_verify import verify_due

    prepare()
    print(json.dumps(verify_due(get_settings()).as_dict()))
    return 0


def _publish(args: argparse.Namespace) -> int:
    """What publishing DOMAIN through its connection would change (--dry-run: reads the zone,
    writes nothing), or queue the `up` that publishes it."""
    from automation.desired_state import build_fleet_config
    from cli.processes import prepare
    from cli.stack import find_workspace
    from database.session import session_scope
    from dnspublish.backends import DryRun, PublishError
    from dnspublish.connect import backend_for
    from dnspublish.publish import publish_record
    from domain.dns_publishing import service as publishing
    from stacks import dns as stack_dns

    prepare()
    settings = get_settings()
    domain = args.domain.strip().rstrip(".").lower()
    if not args.dry_run:
        with session_scope() as session:
            workspace = find_workspace(session, args.workspace)
            op = publishing.request_publish(
                session, workspace.tenant_id, workspace.id, domain, settings=settings
            )
        if op is None:
            print(f"{domain} has no DNS connection (manual): nothing to publish", file=sys.stderr)
            return 1
        print(f"queued operation {op}: the next run publishes the records of {domain}")
        return 0
    # A short transaction for the desired state; the zone is read with none open.
    with session_scope() as session:
        config = build_fleet_config(session, find_workspace(session, args.workspace))
    records = [r for r in config.dns_records if r.domain == domain]
    if not records:
        print(f"{domain}: no records to publish (no DNS connection, or none generated yet)")
        return 1
    connections = {c.id: c for c in config.dns_connections}
    worst = 0
    for record in records:
        connection = connections[record.connection]
        backend = backend_for(
            connection.kind,
            connection.settings,
            connection.credentials,
            timeout=settings.dns_publish_timeout_seconds,
        )
        if backend is None:
            continue
        dry = DryRun(backend)
        want = stack_dns.want_of(stack_dns.inputs(record, connection))
        try:
            zone = (record.zone if record.purpose != "ptr" else None) or dry.find_zone(want.fqdn)
        except PublishError as exc:
            print(f"{record.purpose:<16} {want.type:<5} {want.fqdn}: error: {exc}")
            worst = 1
            continue
        outcome = publish_record(dry, want, zone=zone, mx_policy=record.mx_policy)
        print(
            f"{record.purpose:<16} {want.type:<5} {want.fqdn}: {outcome.status}: {outcome.detail}"
        )
        for fqdn, rtype, add, remove in dry.changes:
            for value in remove:
                print(f"    - {fqdn} {rtype} {value}")
            for value in add:
                print(f"    + {fqdn} {rtype} {value}")
        if outcome.status in ("error", "conflict"):
            worst = 1
    print("(dry run: nothing was changed)")
    return worst


def register(sub: Any) -> None:
    dns = sub.add_parser("dns", help="DNS checks (no database needed) and the DNS sweep")
    dsub = dns.add_subparsers(dest="dns_command", metavar="ACTION", required=True)

    def nameservers(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--nameservers",
            help="comma-separated host[:port] list (default PENGUINMAILS_DNS_NAMESERVERS)",
        )

    p = dsub.add_parser(
        "check-spf",
        help="evaluate SPF (RFC 7208 check_host) for an IP and a domain",
        description="Prints the result word (pass, fail, softfail, neutral, none, permerror, "
        "temperror), why, and the nameserver that answered. --batch reads JSON lines {ip, "
        "domain, sender, helo} on stdin and prints one JSON object per line, in order.",
        epilog="Exit status: 0 pass; 1 any other result (fail, softfail, neutral, none, "
        "permerror); 2 the check could not run (temperror: no nameserver answered; or bad "
        "input). --batch: 0 once every line is answered (each line carries its result), 2 for "
        "bad arguments.",
    )
    p.add_argument("--ip", help="the connecting IP address")
    p.add_argument("--domain", help="the domain whose SPF record is checked")
    p.add_argument("--sender", help="MAIL FROM address (default postmaster@DOMAIN)")
    p.add_argument("--helo", help="HELO/EHLO name (for %%{h} macros)")
    p.add_argument("--batch", action="store_true", help="read JSON lines from stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    nameservers(p)
    p.set_defaults(handler=_check_spf)

    p = dsub.add_parser(
        "check",
        help="check a domain's MX, SPF, DMARC, PTR, DKIM, MTA-STS and TLS-RPT for a server IP",
        description="Prints each check with the nameserver that answered (or that failed to).",
        epilog="Exit status: 0 every required check passes; 1 some required check fails; 2 the "
        "checks could not run (bad input, or no nameserver answered any query).",
    )
    p.add_argument("domain")
    p.add_argument("--ip", required=True, help="the sending server's IP address")
    p.add_argument("--hostname", help="the server's hostname (default: the IP's PTR name)")
    p.add_argument("--dkim-selector", help="check the DKIM key under this selector")
    p.add_argument("--dkim-key", help="expected DKIM public key (base64 p= value)")
    p.add_argument("--dkim-algorithm", default="rsa", choices=["rsa", "ed25519"])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    nameservers(p)
    p.set_defaults(handler=_check)

    p = dsub.add_parser(
        "publish",
        help="publish a mail domain's records through its DNS connection (needs the database)",
    )
    p.add_argument("domain", help="the mail domain, e.g. example.com")
    p.add_argument("--workspace", required=True, help="workspace id or stack name (ws-...)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the changes it would make to the zone, change nothing",
    )
    p.set_defaults(handler=_publish)
    p = dsub.add_parser("sweep", help="run the dns.verify sweep once (needs the database)")
    p.set_defaults(handler=_sweep)
