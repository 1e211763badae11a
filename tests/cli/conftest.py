from tests.support.fixtures import knot  # noqa: F401
