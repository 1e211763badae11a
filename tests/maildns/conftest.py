from tests.support.fixtures import nsd  # noqa: F401
