from tests.probes.conftest import ca, keypair, lab  # noqa: F401 - shared loopback fixtures
from tests.support.fixtures import nsd, private_webhooks  # noqa: F401
