"""probes.tls.evaluate judged directly on observations: the mixed and managed-certificate branches
the live-listener tests in test_checks.py do not reach."""

from datetime import UTC, datetime, timedelta

from probes.net import PeerCertificate, TlsObservation
from probes.tls import evaluate
from probes.types import Status, Thresholds, worst

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _ok(port: int, days: float) -> TlsObservation:
    cert = PeerCertificate("CN=h", "CN=ca", NOW + timedelta(days=days), ("h",))
    return TlsObservation(port, True, True, None, cert)


def test_unreadable_ports_beside_a_good_one_report_ok_with_the_problem() -> None:
    dead = TlsObservation(993, False, False, "refused", None)
    r = evaluate([_ok(443, 60), dead], Thresholds(), NOW)
    assert r.status is Status.OK
    assert r.detail == "993: no certificate read (refused)"
    assert r.value == 60.0
    assert "managed" not in r.data
    assert r.data["ports"][1] == {"port": 993, "verified": False, "error": "refused"}


def test_all_good_names_the_ports_and_first_expiry() -> None:
    r = evaluate([_ok(443, 60), _ok(465, 30.4)], Thresholds(), NOW)
    assert r.status is Status.OK
    assert r.detail == "valid on 443, 465, first expiry in 30 days"
    assert r.value == 30.4


def test_managed_certificates_warn_skip_unparseable_and_count_toward_soonest() -> None:
    managed = [
        {"id": "a", "notValidAfter": (NOW + timedelta(days=10)).isoformat().replace("+00:00", "Z")},
        {"id": "b", "notValidAfter": "garbage"},
        {"id": "c"},
        {"id": "d", "notValidAfter": (NOW + timedelta(days=100)).isoformat()},
    ]
    r = evaluate([_ok(443, 60)], Thresholds(), NOW, managed)
    assert r.status is Status.WARNING
    assert r.detail == "managed certificate a: expires in 10.0 days"
    assert r.value == 10.0
    assert [m["id"] for m in r.data["managed"]] == ["a", "d"]


def test_no_observations_and_empty_managed_is_unknown_with_empty_detail() -> None:
    r = evaluate([], Thresholds(), NOW, [])
    assert r.status is worst([])
    assert r.detail == "valid on "
    assert r.value is None
    assert r.data == {"ports": [], "managed": []}
