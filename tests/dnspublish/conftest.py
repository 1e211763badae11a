from tests.support.fixtures import knot, pdns  # noqa: F401
