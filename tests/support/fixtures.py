"""Fixtures shared by test folders that mirror different source rooms (the DNS feature and the
`dns.verify` job both need nsd; the health feature, `monitoring.health` and the probes all need
the loopback lab). A folder's conftest imports the ones it uses; `override_settings`, which every
test may need, is imported by `tests/conftest.py`."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from kit.sshkeys import new_keypair
from settings import reset_settings
from tests.support.environment import settings_variables
from tests.support.knot import Knot
from tests.support.loopback import Lab
from tests.support.nsd import Nsd, running_nsd
from tests.support.pdns import PowerDns
from tests.support.pki import CertAuthority


class OverrideSettings(Protocol):
    def __call__(self, **fields: object) -> None: ...


@pytest.fixture
def override_settings() -> Iterator[OverrideSettings]:
    """The one way a test changes settings in this process:
    `override_settings(worker_threads=1, webhook_allow_private_urls=True)`.

    Names are `Settings` fields (an unknown one is a TypeError); None unsets the variable, so the
    field is back to its default. Each call sets the `PENGUINMAILS_*` variables and forgets the
    cached settings, so the next `get_settings()` reads them; call it again to change them mid-test.
    At teardown the environment is restored and the cached settings forgotten again."""
    with pytest.MonkeyPatch.context() as env:

        def override(**fields: object) -> None:
            for name, text in settings_variables(fields).items():
                if text is None:
                    env.delenv(name, raising=False)
                else:
                    env.setenv(name, text)
            reset_settings()

        yield override
    reset_settings()


@pytest.fixture(scope="session")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    """One nsd per folder that imports it; each test publishes zones under names of its own."""
    with running_nsd(tmp_path_factory.mktemp("nsd")) as server:
        yield server


@pytest.fixture
def private_webhooks(override_settings: OverrideSettings) -> None:
    """Webhook URLs on loopback are refused by default; these tests deliver to loopback."""
    override_settings(webhook_allow_private_urls=True)


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


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    """A directory for an embedded Postgres, outside pytest's temp root. Run as root, the server
    runs as the unprivileged `pgserver` user, which must traverse every parent directory; pytest
    resets its root (`/tmp/pytest-of-<user>`) to mode 0700 whenever any pytest session starts, so
    a data directory under `tmp_path` breaks as soon as a second session runs beside this one."""
    path = Path(tempfile.mkdtemp(prefix="penguinmails-embedded-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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
