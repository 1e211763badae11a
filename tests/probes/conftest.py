from collections.abc import Iterator

import pytest

from kit.sshkeys import new_keypair
from tests.probes.loopback import Lab
from tests.probes.pki import CertAuthority


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
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
