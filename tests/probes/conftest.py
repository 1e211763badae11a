from tests.support.fixtures import ca, keypair, lab, nsd  # noqa: F401
