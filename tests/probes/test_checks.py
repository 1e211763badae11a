"""Each check against real servers on loopback, status by status."""

import asyncio
import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from probes.runner import probe_server
from probes.types import Check, CheckResult, ProbeConfig, Status, Target, Thresholds
from tests.support.loopback import HttpState, Lab, df_output
from tests.support.pki import CertAuthority
from tests.support.ports import free_port
from tests.support.probe_fleet import Ports, SimServer, config_for, start_server
from tests.support.stalwart import FakeStalwart

HOST = "mx1.example.test"


def run(target: Target, config: ProbeConfig) -> dict[Check, CheckResult]:
    return {r.check: r for r in asyncio.run(probe_server(target, config))}


def target(sim: SimServer, private_key: str | None, **kw: object) -> Target:
    base = Target(
        key="t",
        address=sim.address,
        hostname=sim.hostname,
        ssh_port=sim.ports.ssh,
        ssh_private_key=private_key,
        admin_password="admin-secret",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def healthy(lab: Lab, ca: CertAuthority, keypair: tuple[str, str]) -> SimServer:
    return start_server(lab, ca, address="127.0.0.1", hostname=HOST, authorized_key=keypair[0])


def test_a_healthy_server_is_ok_on_every_check(
    healthy: SimServer, ca: CertAuthority, keypair: tuple[str, str], lab: Lab
) -> None:
    dns_port = lab.dns({"2.0.0.127.zen.test.": ["127.0.0.2"]})  # the RFC 5782 test entry
    results = run(target(healthy, keypair[1]), config_for(healthy.ports, ca, dns_port=dns_port))
    assert {c: r.status for c, r in results.items()} == {c: Status.OK for c in Check}
    assert results[Check.DISK].value == 60.0
    assert results[Check.QUEUE].value == 0
    assert 85 < (results[Check.TLS].value or 0) <= 90
    assert results[Check.MAIL_SERVER].data["starttls"] is True


# --- reachable ----------------------------------------------------------------------------


def test_reachable_is_critical_on_a_closed_port_and_on_a_silent_one(
    healthy: SimServer, ca: CertAuthority, lab: Lab
) -> None:
    config = config_for(healthy.ports, ca, checks=frozenset({Check.REACHABLE}), timeout=0.5)
    closed = run(target(healthy, None, ssh_port=free_port()), config)[Check.REACHABLE]
    assert closed.status is Status.CRITICAL
    assert "connection refused" in closed.detail
    _, silent_port = lab.hang()
    silent = run(target(healthy, None, ssh_port=silent_port), config)[Check.REACHABLE]
    assert silent.status is Status.CRITICAL
    assert "timed out" in silent.detail


# --- mail server --------------------------------------------------------------------------


def test_mail_server_without_starttls_or_naming_another_host_is_a_warning(
    lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    _, plain_smtp = lab.smtp("other.example.test", tls=None)
    ports = replace(healthy.ports, smtp=plain_smtp)
    result = run(
        target(healthy, None), config_for(ports, ca, checks=frozenset({Check.MAIL_SERVER}))
    )
    mail = result[Check.MAIL_SERVER]
    assert mail.status is Status.WARNING
    assert "STARTTLS not offered" in mail.detail
    assert f"does not name {HOST}" in mail.detail


def test_mail_server_is_critical_when_smtp_is_closed_or_silent(
    lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    checks = frozenset({Check.MAIL_SERVER})
    closed = replace(healthy.ports, smtp=free_port())
    r = run(target(healthy, None), config_for(closed, ca, checks=checks))[Check.MAIL_SERVER]
    assert r.status is Status.CRITICAL
    assert "connection refused" in r.detail
    _, silent = lab.hang()
    hung = replace(healthy.ports, smtp=silent)
    r = run(target(healthy, None), config_for(hung, ca, checks=checks, timeout=0.5))[
        Check.MAIL_SERVER
    ]
    assert r.status is Status.CRITICAL
    assert "timed out" in r.detail


def test_mail_server_is_critical_when_imaps_is_down_or_not_ready(
    lab: Lab, ca: CertAuthority, healthy: SimServer, keypair: tuple[str, str]
) -> None:
    checks = frozenset({Check.MAIL_SERVER})
    no_imaps = replace(healthy.ports, imaps=free_port())
    r = run(target(healthy, None), config_for(no_imaps, ca, checks=checks))[Check.MAIL_SERVER]
    assert r.status is Status.CRITICAL
    assert f"TLS on {no_imaps.imaps}" in r.detail

    state = HttpState(ready_status=503)
    _, https = lab.tls_listener(ca.server_context(HOST), http=state)
    not_ready = replace(healthy.ports, https=https)
    r = run(target(healthy, None), config_for(not_ready, ca, checks=checks))[Check.MAIL_SERVER]
    assert r.status is Status.CRITICAL
    assert "/healthz/ready: HTTP 503" in r.detail


# --- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "detail"),
    [
        ("expiring", Status.WARNING, "expires in 3.0 days"),
        ("expiring_today", Status.CRITICAL, "expires in 0.5 days"),
        ("expired", Status.CRITICAL, "certificate has expired"),
        ("wrong_name", Status.CRITICAL, "Hostname mismatch"),
        ("self_signed", Status.CRITICAL, "self-signed certificate"),
        ("closed", Status.UNKNOWN, "connection refused"),
    ],
)
def test_tls_statuses(
    kind: str, status: Status, detail: str, lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    contexts = {
        "expiring": lambda: ca.server_context(HOST, days_left=3),
        "expiring_today": lambda: ca.server_context(HOST, days_left=0.5),
        "expired": lambda: ca.server_context(HOST, expired=True),
        "wrong_name": lambda: ca.server_context("other.example.test"),
        "self_signed": lambda: ca.server_context(HOST, self_signed=True),
    }
    port = (
        free_port() if kind == "closed" else lab.tls_listener(contexts[kind](), http=HttpState())[1]
    )
    ports = replace(healthy.ports, https=port, submissions=port, imaps=port)
    r = run(target(healthy, None), config_for(ports, ca, checks=frozenset({Check.TLS})))[Check.TLS]
    assert r.status is status, r.detail
    assert detail in r.detail
    if kind in ("expiring", "expired", "self_signed"):
        assert r.data["ports"][0]["not_after"]  # read even when not trusted


def test_tls_is_critical_against_another_ca_bundle(
    healthy: SimServer, ca: CertAuthority, tmp_path_factory: pytest.TempPathFactory
) -> None:
    stranger = CertAuthority(tmp_path_factory.mktemp("other-ca"))
    config = config_for(healthy.ports, stranger, checks=frozenset({Check.TLS}))
    r = run(target(healthy, None), config)[Check.TLS]
    assert r.status is Status.CRITICAL
    assert "unable to get local issuer certificate" in r.detail


# --- disk ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used_percent", "status"),
    [(40, Status.OK), (75, Status.WARNING), (95, Status.CRITICAL)],
)
def test_disk_thresholds_over_ssh(
    used_percent: int, status: Status, lab: Lab, ca: CertAuthority, keypair: tuple[str, str]
) -> None:
    total = 200 * 2**30

    def responder(cmd: str) -> tuple[str, int]:
        return df_output(total, total * used_percent // 100), 0

    _, ssh_port = lab.ssh(keypair[0], responder)
    sim = SimServer(lab, "127.0.0.1", HOST, Ports(ssh=ssh_port), HttpState())
    config = config_for(Ports(), ca, checks=frozenset({Check.DISK}))
    before = len(lab.ssh_commands)
    r = run(target(sim, keypair[1]), config)[Check.DISK]
    assert r.status is status
    assert r.value == 100 - used_percent
    assert lab.ssh_commands[before:] == ["df -P -B1 -- /var/lib/stalwart"]


def test_disk_is_unknown_without_a_key_a_trusted_key_or_ssh(
    lab: Lab, ca: CertAuthority, healthy: SimServer, keypair: tuple[str, str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    config = config_for(healthy.ports, ca, checks=frozenset({Check.DISK}))
    assert run(target(healthy, None), config)[Check.DISK].status is Status.UNKNOWN
    other = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    refused = run(target(healthy, other), config)[Check.DISK]
    assert refused.status is Status.UNKNOWN
    assert "ssh" in refused.detail
    down = run(target(healthy, keypair[1], ssh_port=free_port()), config)[Check.DISK]
    assert down.status is Status.UNKNOWN


# --- queue --------------------------------------------------------------------------------


def _queue_server(lab: Lab, ca: CertAuthority, state: HttpState, *, trusted: bool = True) -> Ports:
    ctx = ca.server_context(HOST, self_signed=not trusted)
    _, https = lab.tls_listener(ctx, http=state)
    return Ports(https=https)


@pytest.mark.parametrize(
    ("size", "oldest_minutes", "status"),
    [
        (3, 5, Status.OK),
        (12, 5, Status.WARNING),
        (3, 90, Status.WARNING),
        (30, 5, Status.CRITICAL),
        (1, 7 * 60, Status.CRITICAL),
    ],
)
def test_queue_size_and_age(
    size: int, oldest_minutes: int, status: Status, lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    now = datetime.now(UTC)
    created = now - timedelta(minutes=oldest_minutes)
    items = [
        {"id": i, "created": created.isoformat().replace("+00:00", "Z")}
        for i in range(min(size, 3))
    ]
    state = HttpState(queue_items=items, queue_total=size)
    ports = _queue_server(lab, ca, state)
    r = run(target(healthy, None), config_for(ports, ca, checks=frozenset({Check.QUEUE})))[
        Check.QUEUE
    ]
    assert r.status is status, r.detail
    assert r.value == size
    assert r.data["oldest_age_seconds"] == pytest.approx(oldest_minutes * 60, abs=30)
    assert state.authorizations == ["Basic YWRtaW46YWRtaW4tc2VjcmV0"]  # admin:admin-secret


def test_queue_never_sends_credentials_to_an_untrusted_certificate(
    lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    state = HttpState()
    ports = _queue_server(lab, ca, state, trusted=False)
    r = run(target(healthy, None), config_for(ports, ca, checks=frozenset({Check.QUEUE})))[
        Check.QUEUE
    ]
    assert r.status is Status.UNKNOWN
    assert "not sending credentials" in r.detail
    assert state.authorizations == []


def test_queue_is_unknown_when_the_api_is_missing(
    lab: Lab, ca: CertAuthority, healthy: SimServer
) -> None:
    ports = _queue_server(lab, ca, HttpState(queue_status=404))
    r = run(target(healthy, None), config_for(ports, ca, checks=frozenset({Check.QUEUE})))[
        Check.QUEUE
    ]
    assert r.status is Status.UNKNOWN
    assert "not found" in r.detail


# --- blocklists: tests/probes/test_dnsbl.py (against nsd) -------------------------------


def test_thresholds_are_configurable(lab: Lab, ca: CertAuthority, healthy: SimServer) -> None:
    strict = Thresholds(tls_warning_days=365)
    r = run(
        target(healthy, None),
        config_for(healthy.ports, ca, checks=frozenset({Check.TLS}), thresholds=strict),
    )[Check.TLS]
    assert r.status is Status.WARNING


def test_disk_pins_the_host_key_on_first_contact_and_refuses_another(
    lab: Lab, ca: CertAuthority, keypair: tuple[str, str]
) -> None:
    from probes.types import SEEN_HOST_KEY

    def responder(cmd: str) -> tuple[str, int]:
        return df_output(100 * 2**30, 10 * 2**30), 0

    _, port = lab.ssh(keypair[0], responder)
    sim = SimServer(lab, "127.0.0.1", HOST, Ports(ssh=port), HttpState())
    config = config_for(Ports(), ca, checks=frozenset({Check.DISK}))
    first = run(target(sim, keypair[1]), config)[Check.DISK]
    seen = first.data[SEEN_HOST_KEY]
    assert first.status is Status.OK and seen.startswith("ssh-ed25519 ")

    pinned = run(target(sim, keypair[1], ssh_host_key=seen), config)[Check.DISK]
    assert pinned.status is Status.OK and SEEN_HOST_KEY not in pinned.data

    _, impostor = lab.ssh(keypair[0], responder)  # same address, another host key
    moved = SimServer(lab, "127.0.0.1", HOST, Ports(ssh=impostor), HttpState())
    before = len(lab.ssh_commands)
    refused = run(target(moved, keypair[1], ssh_host_key=seen), config)[Check.DISK]
    assert refused.status is Status.CRITICAL and "host key changed" in refused.detail
    assert len(lab.ssh_commands) == before


class _FakeHetzner:
    """The Hetzner Cloud API's `GET /servers/{id}` on loopback (a cloud API is a boundary we
    cannot reach here): answers the status it is told, only with the right token."""

    def __init__(self, status: str) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self
        self.status = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ok = self.headers.get("Authorization") == "Bearer hc-token"
                body = json.dumps({"server": {"id": 42, "status": fake.status}}).encode()
                self.send_response(200 if ok and self.path == "/v1/servers/42" else 401)
                self.end_headers()
                self.wfile.write(body if ok else b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("provider_status", "token", "status", "detail"),
    [
        ("running", "hc-token", Status.OK, "Hetzner reports it running"),
        ("off", "hc-token", Status.CRITICAL, "Hetzner reports the server off"),
        ("running", "wrong", Status.OK, "Hetzner API answered HTTP 401"),
    ],
)
def test_reachable_asks_hetzner_whether_the_server_runs(
    healthy: SimServer,
    ca: CertAuthority,
    provider_status: str,
    token: str,
    status: Status,
    detail: str,
) -> None:
    api = _FakeHetzner(provider_status)
    try:
        config = replace(
            config_for(healthy.ports, ca, checks=frozenset({Check.REACHABLE})),
            hetzner_api_url=api.url,
            hetzner_token=token,
        )
        r = run(target(healthy, None, provider="hetzner", provider_server_id="42"), config)
    finally:
        api.close()
    assert r[Check.REACHABLE].status is status
    assert detail in r[Check.REACHABLE].detail


# --- v0.16: queue and certificates over JMAP -----------------------------------------------


def _jmap_server(lab: Lab, ca: CertAuthority, tmp: Path, **state: Any) -> tuple[Ports, HttpState]:
    fake = FakeStalwart(tmp)
    fake.seed_admin(HOST, "admin-secret")
    http = HttpState(jmap=fake, queue_status=404, **state)
    _, https = lab.tls_listener(ca.server_context(HOST), http=http)
    return Ports(https=https), http


@pytest.mark.parametrize("version", ["v0.16.18", None])  # None: REST 404, then JMAP
def test_queue_over_jmap_on_016(
    version: str | None, lab: Lab, ca: CertAuthority, healthy: SimServer, tmp_path: Path
) -> None:
    ports, http = _jmap_server(lab, ca, tmp_path)
    now = datetime.now(UTC)
    for minutes in (5, 95, 10):
        created = (now - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        http.jmap.add("QueuedMessage", createdAt=created, recipients={"0": {"address": "x@y"}})
    config = config_for(ports, ca, checks=frozenset({Check.QUEUE}))
    r = run(target(healthy, None, stalwart_version=version), config)[Check.QUEUE]
    assert r.status is Status.WARNING, r.detail  # oldest 95 min > 60 min warning
    assert r.value == 3
    assert r.data["oldest_age_seconds"] == pytest.approx(95 * 60, abs=30)
    assert "x:QueuedMessage/query" in http.jmap.methods
    assert "x:QueuedMessage/get" in http.jmap.methods
    # admin@<hostname>:admin-secret, the v0.16 admin account
    assert (
        http.authorizations[-1]
        == "Basic " + base64.b64encode(f"admin@{HOST}:admin-secret".encode()).decode()
    )


def test_queue_jmap_error_inside_http_200_is_unknown_with_the_reason(
    lab: Lab, ca: CertAuthority, healthy: SimServer, tmp_path: Path
) -> None:
    ports, http = _jmap_server(lab, ca, tmp_path)
    http.jmap.recovery_mode = True  # the fake refuses queue reads in recovery mode
    http.jmap.recovery_admin = (f"admin@{HOST}", "admin-secret")
    config = config_for(ports, ca, checks=frozenset({Check.QUEUE}))
    r = run(target(healthy, None, stalwart_version="v0.16.0"), config)[Check.QUEUE]
    assert r.status is Status.UNKNOWN
    assert "x:QueuedMessage/query: forbidden" in r.detail
    bad = run(target(healthy, None, stalwart_version="v0.16.0", admin_password="nope"), config)
    assert bad[Check.QUEUE].status is Status.UNKNOWN and "401" in bad[Check.QUEUE].detail


def test_tls_judges_stalwarts_own_certificates_beside_the_handshake(
    lab: Lab, ca: CertAuthority, healthy: SimServer, tmp_path: Path
) -> None:
    ports, http = _jmap_server(lab, ca, tmp_path)
    soon = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    cert = http.jmap.add("Certificate", notValidAfter=soon)
    only_https = replace(healthy.ports, https=ports.https)
    config = config_for(only_https, ca, checks=frozenset({Check.TLS}))
    r = run(target(healthy, None, stalwart_version="v0.16.18"), config)[Check.TLS]
    assert r.status is Status.CRITICAL, r.detail  # the handshake alone is fine (90 days)
    assert f"managed certificate {cert}: expires in 1.0 days" in r.detail
    assert r.data["managed"][0]["id"] == cert
    assert "x:Certificate/get" in http.jmap.methods
    # v0.15 (no JMAP): the handshake alone, nothing asked.
    calls = len(http.jmap.methods)
    old = run(target(healthy, None, stalwart_version="v0.15.5"), config)[Check.TLS]
    assert old.status is Status.OK and "managed" not in old.data
    assert len(http.jmap.methods) == calls
