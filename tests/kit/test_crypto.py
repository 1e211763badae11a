"""Encryption at rest (kit.crypto): Fernet under a key derived from PENGUINMAILS_SECRET_KEY."""

import pytest

from kit import crypto
from kit.errors import ConfigurationError, PenguinMailsError
from tests.support.fixtures import OverrideSettings


@pytest.fixture
def env(override_settings: OverrideSettings) -> OverrideSettings:
    override_settings(secret_key="first-key-for-kit-crypto-tests")
    return override_settings


@pytest.mark.parametrize("plaintext", ["hunter2", "", "ünïcødé 🐧 secret", "x" * 10_000])
def test_round_trip(env: OverrideSettings, plaintext: str) -> None:
    token = crypto.encrypt(plaintext)
    assert crypto.decrypt(token) == plaintext


def test_ciphertext_never_contains_the_plaintext(env: OverrideSettings) -> None:
    plaintext = "correct-horse-battery-staple"
    tokens = {crypto.encrypt(plaintext) for _ in range(20)}
    assert len(tokens) == 20  # a fresh IV each time: equal secrets don't look equal at rest
    for token in tokens:
        assert plaintext not in token
        assert "correct" not in token


def test_a_wrong_key_is_refused_with_the_modules_error(env: OverrideSettings) -> None:
    token = crypto.encrypt("provider-token")
    env(secret_key="second-key-for-kit-crypto-tests")
    with pytest.raises(PenguinMailsError, match="PENGUINMAILS_SECRET_KEY") as caught:
        crypto.decrypt(token)
    assert caught.value.status_code == 500
    # Back to the first key, the same token decrypts again: nothing was lost.
    env(secret_key="first-key-for-kit-crypto-tests")
    assert crypto.decrypt(token) == "provider-token"


def test_a_tampered_token_is_refused(env: OverrideSettings) -> None:
    token = crypto.encrypt("dkim-private-key")
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with pytest.raises(PenguinMailsError):
        crypto.decrypt(tampered)


def test_a_short_key_is_a_configuration_error(env: OverrideSettings) -> None:
    env(secret_key="short")
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        crypto.encrypt("anything")
