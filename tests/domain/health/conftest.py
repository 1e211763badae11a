from tests.support.fixtures import ca, keypair, lab, private_webhooks  # noqa: F401
