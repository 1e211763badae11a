"""The Postmaster Tools v2 client against a loopback fake that checks requests against the v2
discovery document (tests/support/reputation_fakes.py): the batch query and its per-domain
errors, the AUTH_SUCCESS_RATE filters, pagination, compliance (the subdomain's own data first),
an auth error, a malformed reply (unknown, never clean)."""

from datetime import date

import pytest

from domain.reputation import clients, postmaster
from domain.reputation import service as reputation
from tests.support.reputation_fakes import (
    FakePostmaster,
    PostmasterDomain,
    query_problem,
    serving_fake,
)

TODAY = date(2026, 12, 1)
TOKEN = "ya29.test-access-token"
COMPLIANCE = {"SPF": "COMPLIANT", "DKIM": "COMPLIANT", "ONE_CLICK_UNSUBSCRIBE": "NEEDS_WORK"}


def _fake(**kw: object) -> FakePostmaster:
    return FakePostmaster(
        TOKEN,
        {
            "acme.example": PostmasterDomain(
                0.0005, {"spf": 0.99, "dkim": 0.97, "dmarc": 0.98}, COMPLIANCE
            ),
            "other.example": PostmasterDomain(0.5, 0.1),
            "hidden.example": PostmasterDomain(0.0, 1.0, readable=False),
        },
        **kw,  # type: ignore[arg-type]
    )


def _fetch(url: str, domains: list[str], token: str = TOKEN) -> dict[str, dict[str, object]]:
    return postmaster.fetch(clients.Endpoint(url, 5), token, domains, TODAY)


def test_good_data_reads_the_newest_day_of_each_v2_metric_and_compliance() -> None:
    fake = _fake()
    with serving_fake(fake) as url:
        got = _fetch(url, ["ACME.example", "hidden.example", "unknown.example"])
    assert got == {
        "acme.example": {
            "spam_rate": 0.0005,  # the newest day's, not an older 0.5
            "auth_spf": 0.99,
            "auth_dkim": 0.97,
            "auth_dmarc": 0.98,
            "auth_success_rate": 0.97,  # the weakest mechanism
            "compliance": COMPLIANCE,
        }
    }  # a domain the token may not read (PERMISSION_DENIED in its result) has no figures
    (batch,) = [b for m, p, b in fake.seen if p == "/v2/domainStats:batchQuery"]
    assert [r["parent"] for r in batch["requests"]] == [
        "domains/acme.example",
        "domains/hidden.example",
        "domains/unknown.example",
    ]
    definitions = batch["requests"][0]["metricDefinitions"]
    assert [(d["baseMetric"]["standardMetric"], d.get("filter")) for d in definitions] == [
        ("SPAM_RATE", None),
        ("AUTH_SUCCESS_RATE", 'auth_type = "spf"'),
        ("AUTH_SUCCESS_RATE", 'auth_type = "dkim"'),
        ("AUTH_SUCCESS_RATE", 'auth_type = "dmarc"'),
    ]
    assert all(query_problem(r) is None for r in batch["requests"])
    paths = [p for _, p, _ in fake.seen]
    assert "/v2/domains/acme.example/complianceStatus" in paths
    assert "/v2/domains/hidden.example/complianceStatus" not in paths


def test_the_fake_refuses_the_shapes_the_discovery_document_does_not_have() -> None:
    good = postmaster.query("acme.example", TODAY)
    assert query_problem(good) is None
    flat = {**good, "timeQuery": {"dateRanges": good["timeQuery"]["dateRanges"]["dateRanges"]}}
    unfiltered = {
        **good,
        "metricDefinitions": [{"name": "a", "baseMetric": {"standardMetric": "AUTH_SUCCESS_RATE"}}],
    }
    v1 = {**good, "metricDefinitions": [{"name": "r", "baseMetric": {"standardMetric": "REP"}}]}
    for body in (flat, unfiltered, v1, {**good, "pageSize": 500}):
        assert query_problem(body) is not None


def test_pages_after_the_first_are_read_with_the_page_token() -> None:
    fake = _fake(days=60)  # 4 metrics x 60 days = 240 rows: two pages of 200
    with serving_fake(fake) as url:
        got = _fetch(url, ["acme.example"])
    assert got["acme.example"]["auth_dmarc"] == 0.98  # on the second page
    follow = [b for m, p, b in fake.seen if p == "/v2/domains/acme.example/domainStats:query"]
    assert [b["pageToken"] for b in follow] == ["200"]


def test_a_subdomain_uses_its_own_compliance_data_when_google_has_it() -> None:
    fake = FakePostmaster(
        TOKEN,
        {
            "mail.acme.example": PostmasterDomain(
                0.0, 1.0, {"SPF": "COMPLIANT"}, subdomain_compliance={"SPF": "NEEDS_WORK"}
            )
        },
    )
    with serving_fake(fake) as url:
        got = _fetch(url, ["mail.acme.example"])
    assert got["mail.acme.example"]["compliance"] == {"SPF": "NEEDS_WORK"}


def test_auth_error_is_a_connector_error_without_the_token() -> None:
    with serving_fake(_fake()) as url, pytest.raises(clients.ConnectorError) as err:
        _fetch(url, ["acme.example"], token="wrong")
    assert "401" in str(err.value) and "wrong" not in str(err.value)


def test_malformed_reply_is_unknown_never_clean() -> None:
    with serving_fake(_fake(malformed=True)) as url:
        got = _fetch(url, ["acme.example"])
    figures = got["acme.example"]
    assert set(figures.values()) == {None}
    assert reputation.external_signals(figures, None) == []
