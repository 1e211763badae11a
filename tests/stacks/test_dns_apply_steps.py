"""stacks.dns.apply's early answers, each decided before anything is published: an unusable or
manual connection, a PTR whose reverse zone is unreachable or not held, and an old value that
cannot be taken out."""

from typing import Any

import pytest

from dnspublish.backends import PublishError, Unreachable
from stacks import dns

PROPS: dict[str, Any] = {
    "kind": "rfc2136",
    "settings": {},
    "credentials": {},
    "zone": "example.test.",
    "purpose": "a",
    "type": "A",
    "fqdn": "mail.example.test.",
    "value": "192.0.2.10",
    "ttl": 3600,
    "mx_policy": "keep",
}


class Reverse:
    description = "the test server"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def find_zone(self, fqdn: str) -> str:
        raise self.error


def outcome(status: str, detail: str) -> dict[str, Any]:
    return {"status": status, "detail": detail, "zone_found": "", "published_at": "", "owned": {}}


def test_unusable_connection_is_the_records_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: Any, **k: Any) -> None:
        raise ValueError("no server")

    monkeypatch.setattr(dns, "backend_for", broken)
    assert dns.apply(PROPS) == outcome(
        "error", "the connection cannot be used: ValueError: no server"
    )


def test_manual_connection_is_manual(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dns, "backend_for", lambda *a, **k: None)
    assert dns.apply(PROPS) == outcome("manual", "manual connection: publish it by hand")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Unreachable("timed out"), outcome("error", "timed out")),
        (
            PublishError("no SOA"),
            outcome(
                "manual",
                "the test server holds no reverse zone for 10.2.0.192.in-addr.arpa. (no SOA); "
                "the PTR is set at the server's provider (rDNS)",
            ),
        ),
    ],
)
def test_ptr_without_its_reverse_zone(
    monkeypatch: pytest.MonkeyPatch, error: Exception, expected: dict[str, Any]
) -> None:
    monkeypatch.setattr(dns, "backend_for", lambda *a, **k: Reverse(error))
    ptr = {**PROPS, "purpose": "ptr", "type": "PTR", "fqdn": "10.2.0.192.in-addr.arpa."}
    assert dns.apply(ptr) == expected


def test_old_value_that_cannot_be_removed_stops_the_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    removed: list[dict[str, Any]] = []

    def refuse(props: dict[str, Any], credentials: Any = None, timeout: float = 3.0) -> str:
        removed.append(props)
        raise PublishError("REFUSED")

    monkeypatch.setattr(dns, "backend_for", lambda *a, **k: object())
    monkeypatch.setattr(dns, "remove", refuse)
    previous = {**PROPS, "value": "192.0.2.99", "status": "published", "owned": {"added": ["x"]}}
    assert dns.apply(PROPS, previous=previous) == outcome(
        "error", "could not remove the value we published before: REFUSED"
    )
    assert removed == [previous]
