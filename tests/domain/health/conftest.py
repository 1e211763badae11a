from collections.abc import Iterator

import pytest

from settings import reset_settings
from tests.probes.conftest import ca, keypair, lab  # noqa: F401 - shared loopback fixtures


@pytest.fixture
def private_webhooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Webhook URLs on loopback are refused by default; these tests deliver to loopback."""
    monkeypatch.setenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    reset_settings()
    yield
    monkeypatch.delenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS")
    reset_settings()
