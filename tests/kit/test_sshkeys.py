"""A workspace's SSH key pair (kit.sshkeys.new_keypair)."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kit.sshkeys import new_keypair


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_public_key_parses_and_matches_the_private_one() -> None:
    public, private = new_keypair()
    assert public.startswith("ssh-ed25519 ")
    assert "\n" not in public.strip()
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    parsed_public = serialization.load_ssh_public_key(public.encode())
    parsed_private = serialization.load_ssh_private_key(private.encode(), password=None)
    assert isinstance(parsed_public, Ed25519PublicKey)
    assert isinstance(parsed_private, Ed25519PrivateKey)
    assert _raw(parsed_private.public_key()) == _raw(parsed_public)

    # The private key signs what the public key verifies.
    signature = parsed_private.sign(b"penguin")
    parsed_public.verify(signature, b"penguin")


def test_every_pair_is_new() -> None:
    pairs = [new_keypair() for _ in range(10)]
    assert len({public for public, _ in pairs}) == 10
    assert len({private for _, private in pairs}) == 10
