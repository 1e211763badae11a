"""The service-account grant against a loopback token endpoint that verifies the RS256
assertion with the public key (tests/support/reputation_fakes.py FakeGoogleToken): the claims,
the cache until five minutes before expiry, a refused grant, and validation that names the
field without echoing the key."""

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from domain.reputation import clients, google_auth, postmaster
from kit.errors import ValidationFailed
from tests.support.reputation_fakes import FakeGoogleToken, make_service_account, serving_fake

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_signed_assertion_is_exchanged_and_the_token_cached_until_near_expiry() -> None:
    info, public = make_service_account()
    key = google_auth.validate(info)
    fake = FakeGoogleToken(public, info["client_email"], expires_in=3600)
    with serving_fake(fake) as url:
        token_url = f"{url}/token"

        def get(now: datetime) -> str:
            return google_auth.access_token(key, token_url, postmaster.SCOPE, 5, now)

        assert get(T0) == fake.issued
        (first,) = fake.exchanges
        assert first["header"] == {"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}
        assert first["claims"] == {
            "iss": info["client_email"],
            "scope": postmaster.SCOPE,
            "aud": token_url,
            "iat": int(T0.timestamp()),
            "exp": int(T0.timestamp()) + 3600,
        }
        assert get(T0 + timedelta(minutes=54)) == fake.issued
        assert len(fake.exchanges) == 1  # cached
        get(T0 + timedelta(minutes=55))  # five minutes before expiry: a new exchange
        assert len(fake.exchanges) == 2


def test_a_key_the_endpoint_does_not_know_is_refused_without_secrets() -> None:
    info, _ = make_service_account("other@acme-project.iam.gserviceaccount.com")
    _, public = make_service_account()  # the endpoint holds a different public key
    fake = FakeGoogleToken(public, info["client_email"])
    with serving_fake(fake) as url, pytest.raises(clients.ConnectorError) as err:
        google_auth.access_token(
            google_auth.validate(info), f"{url}/token", postmaster.SCOPE, 5, T0
        )
    assert "invalid_grant" in str(err.value) and "400" in str(err.value)
    assert "PRIVATE" not in str(err.value) and fake.exchanges == []


def _ec_key() -> str:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "authorized_user"}, "service_account.type"),
        ({"client_email": 7}, "service_account.client_email"),
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----"},
            "service_account.private_key",
        ),
        ({"private_key": None}, "service_account.private_key"),
        ({"private_key": "EC"}, "service_account.private_key"),
        ({"private_key_id": ["x"]}, "service_account.private_key_id"),
    ],
)
def test_a_malformed_key_is_a_422_naming_the_field(change: dict[str, object], field: str) -> None:
    info, _ = make_service_account()
    body: dict[str, object] = {**info, **change}
    if change.get("private_key") == "EC":
        body["private_key"] = _ec_key()
    with pytest.raises(ValidationFailed) as err:
        google_auth.validate(body)
    assert err.value.field == field
    assert "BEGIN" not in str(err.value) and info["private_key"][40:80] not in str(err.value)
