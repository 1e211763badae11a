"""What a probe is told (a target and a config) and what it answers (a CheckResult). No DB here:
the domain layer turns rows into targets and results into history."""

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from kit.hostports import parse_host_ports


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"  # could not measure: never an alert, never a recovery


SEVERITY = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


def worst(statuses: list[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default=Status.UNKNOWN)


class Check(StrEnum):
    REACHABLE = "reachable"
    MAIL_SERVER = "mail_server"
    TLS = "tls"
    DISK = "disk"
    QUEUE = "queue"
    DNSBL = "dnsbl"
    DELIVERY = "delivery"  # the server's own delivery counters (probes/delivery.py)


# In a result's data: the SSH host key a server showed on first contact, for the caller to pin.
SEEN_HOST_KEY = "ssh_host_key_seen"


@dataclass(frozen=True)
class CheckResult:
    check: Check
    status: Status
    detail: str
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """One server as the probes see it. `address` is where sockets go; `hostname` is what the
    server must present (SNI, certificate name, EHLO)."""

    key: str
    address: str
    hostname: str
    ssh_port: int = 22
    ssh_user: str = "root"
    ssh_private_key: str | None = field(default=None, repr=False)
    ssh_host_key: str | None = None  # pinned; None until first seen (trust on first use)
    provider: str = "existing"
    provider_server_id: str | None = None
    admin_user: str = "admin"
    admin_password: str | None = field(default=None, repr=False)
    # The pinned release (v0.16+: JMAP, earlier: REST); None: REST first, then JMAP.
    stalwart_version: str | None = None
    ipv6: str | None = None  # also looked up on the IP blocklists


@dataclass(frozen=True)
class Thresholds:
    tls_warning_days: float = 14.0
    tls_critical_days: float = 2.0
    disk_warning_free_percent: float = 30.0
    disk_critical_free_percent: float = 15.0
    queue_warning_size: int = 10
    queue_critical_size: int = 30
    queue_warning_age_seconds: float = 3600.0
    queue_critical_age_seconds: float = 6 * 3600.0


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53


@dataclass(frozen=True)
class ProbeConfig:
    smtp_port: int = 25
    submissions_port: int = 465
    imaps_port: int = 993
    https_port: int = 443
    ca_bundle: Path | None = None
    timeout: float = 10.0
    concurrency: int = 500
    # The least time a step keeps its slot while still waiting (probes/runner.py).
    slot_hold: float = 0.5
    ssh_connect_timeout: float = 10.0
    disk_path: str = "/var/lib/stalwart"
    queue_page_size: int = 100
    dnsbl_zones: tuple[str, ...] = ("zen.spamhaus.org",)  # IP lists
    dnsbl_domain_zones: tuple[str, ...] = ()  # domain lists (settings: dbl.spamhaus.org)
    dnsbl_nameservers: tuple[Nameserver, ...] = ()
    dnsbl_dqs_key: str | None = field(default=None, repr=False)
    hetzner_api_url: str = "https://api.hetzner.cloud/v1"
    hetzner_token: str | None = field(default=None, repr=False)
    thresholds: Thresholds = field(default_factory=Thresholds)
    checks: frozenset[Check] = frozenset(Check)

    @cached_property
    def verifying_context(self) -> ssl.SSLContext:
        """Built once per config: loading a CA bundle costs milliseconds per handshake otherwise."""
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle) if self.ca_bundle else None)
        ctx.check_hostname = True
        return ctx

    @cached_property
    def reading_context(self) -> ssl.SSLContext:
        """For reading what a server presents when verification already failed."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx


def nameservers(value: str | None) -> tuple[Nameserver, ...]:
    """The `host[:port]` list of a nameserver setting, as the probes' Nameserver tuples."""
    return tuple(Nameserver(host, port) for host, port in parse_host_ports(value, 53))
