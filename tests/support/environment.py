"""Settings as environment variables, for the two ways a test changes them:

- in this process: the `override_settings` fixture (`tests.support.fixtures`, exposed by
  `tests/conftest.py`) sets the variables these helpers name and forgets the cached settings;
- in a child process (`penguinmails serve`, `worker`, a CLI command): `child_env(**fields)` is
  the whole environment to start it with.

Both take `Settings` field names (`worker_threads=1`), never variable names, and refuse one that
`Settings` does not declare, so a renamed setting fails the test instead of being ignored."""

import os
from collections.abc import Mapping

from settings import Settings

PREFIX = "PENGUINMAILS_"
# The key `tests/conftest.py` gives this process (and a child process that shares its database).
TEST_SECRET_KEY = "test-secret-key-not-for-production"


def variable(name: str) -> str:
    """`worker_threads` -> `PENGUINMAILS_WORKER_THREADS`; an unknown field is a TypeError."""
    if name not in Settings.model_fields:
        raise TypeError(f"{name!r} is not a Settings field (settings/): no {PREFIX}{name.upper()}")
    return PREFIX + name.upper()


def value(v: object) -> str:
    """How the environment spells a value: booleans as true/false, anything else as str()."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def settings_variables(fields: Mapping[str, object]) -> dict[str, str | None]:
    """`{field: value}` -> `{PENGUINMAILS_FIELD: text}`; a None value means "unset it"."""
    return {variable(name): None if v is None else value(v) for name, v in fields.items()}


def child_env(**fields: object) -> dict[str, str]:
    """The environment for a child process: this one's without any `PENGUINMAILS_*` variable
    (so nothing the test run was given leaks in), plus `fields` as `PENGUINMAILS_*`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env.update({k: v for k, v in settings_variables(fields).items() if v is not None})
    return env
