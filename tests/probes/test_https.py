"""One kept-alive TLS connection per server for the HTTPS checks, counted at the loopback server:
the certificate check, /healthz/ready and the management API share one handshake, and HTTP/1.1's
`Connection: close` is followed when the server says it."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from probes.https import HttpsConnection
from probes.runner import probe_many
from probes.types import Check, ProbeConfig, Status, Target
from tests.support.loopback import HttpState, Lab
from tests.support.pki import CertAuthority
from tests.support.probe_fleet import Ports, SimServer, config_for, start_server
from tests.support.stalwart import FakeStalwart

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def _fleet(lab: Lab, ca: CertAuthority, key: str, tmp: Path) -> list[SimServer]:
    """Three v0.16 servers on their own loopback addresses, sharing the port numbers."""
    sims: list[SimServer] = []
    for i, address in enumerate(ADDRESSES):
        hostname = f"mx{i}.example.test"
        ports = sims[0].ports if sims else None
        sim = start_server(
            lab, ca, address=address, hostname=hostname, authorized_key=key, ports=ports
        )
        fake = FakeStalwart(tmp / str(i))
        fake.seed_admin(hostname, "admin-secret")
        soon = (datetime.now(UTC) + timedelta(days=60)).isoformat().replace("+00:00", "Z")
        fake.add("Certificate", notValidAfter=soon)
        sim.http.jmap, sim.http.queue_status = fake, 404
        sims.append(sim)
    return sims


def _targets(sims: list[SimServer], private_key: str) -> list[Target]:
    return [
        Target(
            key=sim.hostname,
            address=sim.address,
            hostname=sim.hostname,
            ssh_port=sim.ports.ssh,
            ssh_private_key=private_key,
            admin_password="admin-secret",
            stalwart_version=None,  # REST first (404 here), then JMAP: the most requests
        )
        for sim in sims
    ]


def test_one_tls_handshake_per_server_carries_certificate_ready_and_api(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str], tmp_path: Path
) -> None:
    sims = _fleet(lab, ca, keypair[0], tmp_path)
    config = config_for(sims[0].ports, ca, checks=frozenset(Check) - {Check.DNSBL})
    results = asyncio.run(probe_many(_targets(sims, keypair[1]), config))
    for sim in sims:
        by_check = {r.check: r for r in results[sim.hostname]}
        assert {c: r.status for c, r in by_check.items()} == {
            c: Status.OK for c in config.checks
        }, by_check
        # /healthz/ready, the REST queue (404), then JMAP query over the same connection.
        assert "/healthz/ready" in sim.http.requests
        assert sum(p.startswith("/api/queue") for p in sim.http.requests) == 1
        assert sim.http.requests.count("/jmap/") >= 1
        assert sim.http.connections == 1, sim.http.requests


def test_managed_certificates_ride_the_same_connection_on_016(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str], tmp_path: Path
) -> None:
    sims = _fleet(lab, ca, keypair[0], tmp_path)
    config = config_for(sims[0].ports, ca, checks=frozenset({Check.TLS, Check.QUEUE}))
    targets = [
        Target(
            t.key, t.address, t.hostname, admin_password="admin-secret", stalwart_version="v0.16.18"
        )
        for t in _targets(sims, keypair[1])
    ]
    results = asyncio.run(probe_many(targets, config))
    for sim in sims:
        tls = next(r for r in results[sim.hostname] if r.check is Check.TLS)
        assert tls.data.get("managed"), tls
        assert "x:Certificate/get" in sim.http.jmap.methods
        assert "x:QueuedMessage/query" in sim.http.jmap.methods
        assert sim.http.connections == 1


def test_a_server_that_says_connection_close_gets_a_new_connection_per_request(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str], tmp_path: Path
) -> None:
    sims = _fleet(lab, ca, keypair[0], tmp_path)
    for sim in sims:
        sim.http.keep_alive = False
    config = config_for(sims[0].ports, ca, checks=frozenset({Check.MAIL_SERVER, Check.QUEUE}))
    results = asyncio.run(probe_many(_targets(sims, keypair[1]), config))
    for sim in sims:
        assert all(r.status is Status.OK for r in results[sim.hostname]), results[sim.hostname]
        assert sim.http.connections == len(sim.http.requests) >= 3


def test_an_untrusted_certificate_is_read_once_more_and_gets_no_credentials(
    lab: Lab, ca: CertAuthority, tmp_path: Path
) -> None:
    other = CertAuthority(tmp_path)
    http = HttpState()
    _, port = lab.tls_listener(other.server_context("mx.example.test"), http=http)
    config = config_for(Ports(https=port), ca)

    async def go() -> tuple[int, int, str]:
        conn = HttpsConnection(
            "127.0.0.1",
            port,
            "mx.example.test",
            config.verifying_context,
            config.reading_context,
            timeout=2,
        )
        observed = await conn.open()
        assert observed.handshake and not observed.verified and observed.certificate
        ready = await conn.request("/healthz/ready")  # nothing secret: may go
        with pytest.raises(Exception, match="certificate verify failed"):
            await conn.request("/api/queue/messages", authorization="Basic c2VjcmV0")
        await conn.close()
        return ready.status, conn.handshakes, ",".join(http.requests)

    status, handshakes, requests = asyncio.run(go())
    assert status == 200
    # Verifying (refused by us, so it never reaches the server's handler), then reading.
    assert handshakes == 2 and http.connections == 1
    assert requests == "/healthz/ready" and http.authorizations == []


def test_a_request_that_times_out_poisons_the_connection_not_the_next_timeout(
    lab: Lab, ca: CertAuthority
) -> None:
    """A server that handshakes and then never answers costs one timeout, not one per
    request: the stream is in an unknown state, so later requests fail at once."""
    _, port = lab.tls_listener(ca.server_context("mx.example.test"), greeting=b"")
    config: ProbeConfig = config_for(Ports(https=port), ca)

    async def go() -> float:
        conn = HttpsConnection(
            "127.0.0.1",
            port,
            "mx.example.test",
            config.verifying_context,
            config.reading_context,
            timeout=0.3,
        )
        assert (await conn.open()).verified
        with pytest.raises(TimeoutError):
            await conn.request("/healthz/ready")
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await conn.request("/healthz/ready")
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(go()) < 0.1
