"""Fixtures shared by test folders that mirror different source rooms (the DNS feature and the
`dns.verify` job both need nsd; the health feature and `monitoring.health` both deliver
webhooks to loopback). A folder's conftest imports the ones it uses."""

from collections.abc import Iterator

import pytest

from settings import reset_settings
from tests.nsd import Nsd, running_nsd
from tests.support.knot import Knot
from tests.support.pdns import PowerDns


@pytest.fixture(scope="session")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-domain")) as server:
        yield server


@pytest.fixture
def private_webhooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Webhook URLs on loopback are refused by default; these tests deliver to loopback."""
    monkeypatch.setenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    reset_settings()
    yield
    monkeypatch.delenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS")
    reset_settings()


@pytest.fixture(scope="session")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Knot]:
    """A Knot DNS server taking RFC 2136 updates signed with its TSIG key (tests/support/knot)."""
    from tests.support.knot import running_knot

    with running_knot(tmp_path_factory.mktemp("knot")) as server:
        yield server


@pytest.fixture(scope="session")
def pdns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PowerDns]:
    """PowerDNS Authoritative with its HTTP API (tests/support/pdns)."""
    from tests.support.pdns import running_pdns

    with running_pdns(tmp_path_factory.mktemp("pdns")) as server:
        yield server
