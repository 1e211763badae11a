from collections.abc import Iterator

import pytest

from tests.support.knot import Knot, running_knot


@pytest.fixture(scope="session")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Knot]:
    with running_knot(tmp_path_factory.mktemp("knot")) as server:
        yield server
