"""Fixtures shared by test folders that mirror different source rooms (the DNS feature and the
`dns.verify` job both need nsd; the health feature, `monitoring.health` and the probes all need
the loopback lab). A folder's conftest imports the ones it uses."""

from collections.abc import Iterator

import pytest

from kit.sshkeys import new_keypair
from settings import reset_settings
from tests.support.loopback import Lab
from tests.support.nsd import Nsd, running_nsd
from tests.support.pki import CertAuthority


@pytest.fixture(scope="session")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    """One nsd per folder that imports it; each test publishes zones under names of its own."""
    with running_nsd(tmp_path_factory.mktemp("nsd")) as server:
        yield server


@pytest.fixture
def private_webhooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Webhook URLs on loopback are refused by default; these tests deliver to loopback."""
    monkeypatch.setenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    reset_settings()
    yield
    monkeypatch.delenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS")
    reset_settings()


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Real SSH, SMTP, TLS and DNS servers on loopback (`tests.support.loopback`)."""
    lab = Lab()
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    return CertAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    """(public OpenSSH line, private OpenSSH PEM), as a workspace holds them."""
    return new_keypair()
