"""The delivery check against Stalwart's Prometheus endpoint on a loopback TLS listener (the
exposition format of crates/common/src/telemetry/metrics/prometheus.rs, tests/support/
stalwart_metrics.py): the counters read, zero counters absent, credentials only over a verified
certificate, a disabled endpoint or refused credentials unknown; and, through the v0.16 fake,
the endpoint the stack's configure step turned on."""

import asyncio
from pathlib import Path

import pytest

from probes import delivery
from probes.runner import probe_server
from probes.types import Check, CheckResult, Status, Target
from tests.support.loopback import HttpState, Lab
from tests.support.pki import CertAuthority
from tests.support.probe_fleet import Ports, config_for
from tests.support.stalwart import FakeStalwart
from tests.support.stalwart_metrics import PrometheusEndpoint, basic, exposition

HOST = "mx1.example.test"
COUNTS = {"delivery.delivered": 940, "delivery.dsn-perm-fail": 12, "delivery.dsn-temp-fail": 3}


def _run(
    lab: Lab, ca: CertAuthority, state: HttpState, trusted: bool = True, **kw: object
) -> CheckResult:
    _, https = lab.tls_listener(ca.server_context(HOST, self_signed=not trusted), http=state)
    config = config_for(Ports(https=https), ca, checks=frozenset({Check.DELIVERY}))
    target = Target(
        key="t", address="127.0.0.1", hostname=HOST, admin_password="admin-secret", **kw
    )  # type: ignore[arg-type]
    (result,) = asyncio.run(probe_server(target, config))
    return result


def test_the_counters_are_read_with_the_admin_credentials(lab: Lab, ca: CertAuthority) -> None:
    endpoint = PrometheusEndpoint(COUNTS, auth=("admin", "admin-secret"))
    r = _run(lab, ca, HttpState(prometheus=endpoint), stalwart_version="v0.15.5")
    assert r.status is Status.OK, r.detail
    assert r.data == {"delivered": 940, "bounced": 12, "deferred": 3}
    assert r.detail == "since start: 940 delivered, 12 bounced, 3 deferred"
    assert endpoint.requests == [basic("admin", "admin-secret")]


def test_zero_counters_are_absent_and_read_as_zero() -> None:
    assert delivery.parse(exposition({"delivery.delivered": 5})) == {
        "delivered": 5,
        "bounced": 0,
        "deferred": 0,
    }
    with pytest.raises(ValueError):
        delivery.parse("delivery_delivered -1\n")


@pytest.mark.parametrize(
    ("endpoint", "trusted", "detail"),
    [
        (PrometheusEndpoint(enabled=False), True, "not enabled"),
        (PrometheusEndpoint(auth=("admin", "other")), True, "answered 401"),
        (PrometheusEndpoint(), False, "not sending credentials"),
    ],
)
def test_unknown_when_disabled_refused_or_untrusted(
    lab: Lab, ca: CertAuthority, endpoint: PrometheusEndpoint, trusted: bool, detail: str
) -> None:
    r = _run(lab, ca, HttpState(prometheus=endpoint), trusted=trusted, stalwart_version="v0.15.5")
    assert r.status is Status.UNKNOWN and detail in r.detail
    if not trusted:
        assert endpoint.requests == []  # nothing reached the server


def test_v016_reads_the_endpoint_the_configure_step_enabled(
    lab: Lab, ca: CertAuthority, tmp_path: Path
) -> None:
    fake = FakeStalwart(tmp_path)
    fake.delivery_counters = dict(COUNTS)
    state = HttpState(prometheus=fake)
    assert _run(lab, ca, state, stalwart_version="v0.16.18").status is Status.UNKNOWN  # disabled
    # What the configure step writes (stacks/scripts.py), then ReloadSettings.
    secret = {"@type": "Value", "secret": "admin-secret"}
    prometheus = {"@type": "Enabled", "authUsername": f"admin@{HOST}", "authSecret": secret}
    fake.call("x:Metrics/set", {"update": {"singleton": {"prometheus": prometheus}}})
    fake.call("x:Action/set", {"create": {"r": {"@type": "ReloadSettings"}}})
    r = _run(lab, ca, state, stalwart_version="v0.16.18")
    assert r.status is Status.OK and r.data["bounced"] == 12
    # An unknown version tries the REST admin, then admin@<hostname>.
    assert _run(lab, ca, state).data["delivered"] == 940
