"""Where the encryption key comes from: settings, or a key generated once into the data dir."""

import logging
import os
import secrets
from pathlib import Path

from kit.errors import ConfigurationError
from settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "secret_key"


def resolve_secret_key(settings: Settings) -> str:
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if len(value) < 16:
            raise ConfigurationError("PENGUINMAILS_SECRET_KEY must be at least 16 characters")
        return value
    if settings.database_url is not None:
        raise ConfigurationError(
            "PENGUINMAILS_SECRET_KEY is required when PENGUINMAILS_DATABASE_URL is set "
            "(it encrypts secrets at rest; generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    path = Path(settings.data_dir) / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting at once must not each write their own key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    log.warning("generated a new secret key in %s (mode 0600); back it up with the database", path)
    return value
