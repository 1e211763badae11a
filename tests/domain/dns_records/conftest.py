from collections.abc import Iterator

import pytest

from tests.nsd import Nsd, running_nsd


@pytest.fixture(scope="session")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-domain")) as server:
        yield server
