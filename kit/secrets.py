import secrets

_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_password(length: int = 24) -> str:
    """A random password without look-alike characters, strong enough for Stalwart's checks."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
