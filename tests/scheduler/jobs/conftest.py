from tests.support.fixtures import ca, keypair, lab, nsd, private_webhooks  # noqa: F401
