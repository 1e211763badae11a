"""Signatures: one `v1` per secret in use, any of them verifies, and a receiver that reads only
the last `v1` (the parser this module shipped before rotation) keeps working on the old secret."""

import hashlib
import hmac

from domain.webhooks import signing

BODY = b'{"id":"e1","type":"health.alert"}'
NOW = 1_800_000_000


def _mac(secret: str, timestamp: int = NOW) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + BODY, hashlib.sha256).hexdigest()


def _last_v1_only(secret: str, header: str) -> bool:
    """How the old `verify` read the header: a dict, so the last `v1` wins."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    return hmac.compare_digest(_mac(secret, int(parts["t"])), parts["v1"])


def test_one_secret_one_signature() -> None:
    header = signing.sign("whsec_new", BODY, NOW)
    assert header == f"t={NOW},v1={_mac('whsec_new')}"
    assert signing.verify("whsec_new", header, BODY, now=NOW)
    assert not signing.verify("whsec_old", header, BODY, now=NOW)


def test_during_a_rotation_both_secrets_verify_new_first() -> None:
    header = signing.sign("whsec_new", BODY, NOW, previous="whsec_old")
    assert header == f"t={NOW},v1={_mac('whsec_new')},v1={_mac('whsec_old')}"
    assert signing.verify("whsec_new", header, BODY, now=NOW)
    assert signing.verify("whsec_old", header, BODY, now=NOW)
    assert not signing.verify("whsec_other", header, BODY, now=NOW)
    # a receiver that has not switched yet, with the old parser, still verifies
    assert _last_v1_only("whsec_old", header)


def test_tampering_an_old_timestamp_or_a_bad_header_fails() -> None:
    header = signing.sign("whsec_new", BODY, NOW, previous="whsec_old")
    assert not signing.verify("whsec_new", header, BODY + b" ", now=NOW)
    assert not signing.verify("whsec_new", header, BODY, now=NOW + 301)
    assert signing.verify("whsec_new", header, BODY, now=NOW + 299)
    forged = header.replace(f"t={NOW}", f"t={NOW + 10}")
    assert not signing.verify("whsec_new", forged, BODY, now=NOW)
    for bad in ("", "v1=abc", "t=soon,v1=abc", f"t={NOW}"):
        assert not signing.verify("whsec_new", bad, BODY, now=NOW)
