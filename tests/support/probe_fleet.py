"""A whole simulated mail server on one loopback address: SSH, SMTP with STARTTLS, TLS on the
HTTPS/submissions/IMAPS ports (HTTP endpoints on HTTPS), so one ProbeConfig fits every server
that shares the port numbers."""

from dataclasses import dataclass, field
from typing import Any

from probes.types import Check, Nameserver, ProbeConfig, Thresholds
from tests.support.loopback import HttpState, Lab, Responder, df_output
from tests.support.pki import CertAuthority


@dataclass
class Ports:
    ssh: int = 0
    smtp: int = 0
    https: int = 0
    submissions: int = 0
    imaps: int = 0


def default_responder(cmd: str) -> tuple[str, int]:
    if cmd.startswith("df "):
        return df_output(100 * 2**30, 40 * 2**30), 0
    return "", 127


@dataclass
class SimServer:
    lab: Lab
    address: str
    hostname: str
    ports: Ports
    http: HttpState
    handles: dict[str, Any] = field(default_factory=dict)

    def stop(self, name: str) -> None:
        self.lab.stop(self.handles.pop(name))


def start_server(
    lab: Lab,
    ca: CertAuthority,
    *,
    address: str,
    hostname: str,
    authorized_key: str,
    ports: Ports | None = None,
    responder: Responder = default_responder,
) -> SimServer:
    ports = ports or Ports()
    ctx = ca.server_context(hostname)
    http = HttpState()
    sim = SimServer(lab, address, hostname, Ports(), http)
    sim.handles["ssh"], sim.ports.ssh = lab.ssh(authorized_key, responder, address, ports.ssh)
    sim.handles["smtp"], sim.ports.smtp = lab.smtp(hostname, ctx, address, ports.smtp)
    sim.handles["https"], sim.ports.https = lab.tls_listener(ctx, address, ports.https, http=http)
    sim.handles["submissions"], sim.ports.submissions = lab.tls_listener(
        ctx, address, ports.submissions, greeting=f"220 {hostname} ESMTP\r\n".encode()
    )
    sim.handles["imaps"], sim.ports.imaps = lab.tls_listener(
        ctx, address, ports.imaps, greeting=b"* OK IMAP ready\r\n"
    )
    return sim


def restart_smtp(sim: SimServer, ca: CertAuthority) -> None:
    sim.handles["smtp"], _ = sim.lab.smtp(
        sim.hostname, ca.server_context(sim.hostname), sim.address, sim.ports.smtp
    )


def config_for(
    ports: Ports,
    ca: CertAuthority,
    *,
    dns_port: int | None = None,
    zones: tuple[str, ...] = ("zen.test",),
    timeout: float = 2.0,
    checks: frozenset[Check] = frozenset(Check),
    thresholds: Thresholds | None = None,
) -> ProbeConfig:
    return ProbeConfig(
        smtp_port=ports.smtp,
        submissions_port=ports.submissions,
        imaps_port=ports.imaps,
        https_port=ports.https,
        ca_bundle=ca.bundle,
        timeout=timeout,
        concurrency=50,
        ssh_connect_timeout=timeout,
        dnsbl_zones=zones if dns_port else (),
        dnsbl_nameservers=(Nameserver("127.0.0.1", dns_port),) if dns_port else (),
        thresholds=thresholds or Thresholds(),
        checks=checks,
    )
