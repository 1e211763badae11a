from tests.support.fixtures import ca, keypair, lab  # noqa: F401
