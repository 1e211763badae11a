from collections.abc import Iterator

import pytest

from tests.nsd import Nsd, running_nsd


@pytest.fixture(scope="session")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    """One nsd for the whole run; each test publishes zones under names of its own."""
    with running_nsd(tmp_path_factory.mktemp("nsd")) as server:
        yield server
