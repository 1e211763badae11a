"""Encryption at rest for secrets kept in Postgres (provider tokens, SSH keys, DKIM private keys,
mailbox passwords). Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from the settings key."""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from kit.errors import PenguinMailsError
from kit.secret_key import resolve_secret_key
from settings import get_settings


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    digest = hashlib.sha256(b"penguinmails-at-rest:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _current() -> Fernet:
    return _fernet(resolve_secret_key(get_settings()))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise PenguinMailsError(
            "a stored secret cannot be decrypted: PENGUINMAILS_SECRET_KEY changed?"
        ) from exc
