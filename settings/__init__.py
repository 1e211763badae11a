"""The one settings object. Each subsystem declares its fields in its own module; this class
joins them so every field is read from the environment with the `PENGUINMAILS_` prefix."""

from functools import lru_cache

from pydantic_settings import SettingsConfigDict

from settings.console import ConsoleSettings
from settings.core import CoreSettings
from settings.dns import DnsSettings
from settings.health import HealthSettings
from settings.operations import OperationSettings
from settings.reputation import ReputationSettings
from settings.stacks import StackSettings
from settings.warmup import WarmupSettings
from settings.webhooks import WebhookSettings


class Settings(
    ConsoleSettings,
    ReputationSettings,
    WarmupSettings,
    WebhookSettings,
    OperationSettings,
    StackSettings,
    HealthSettings,
    DnsSettings,
    CoreSettings,
):
    model_config = SettingsConfigDict(
        env_prefix="PENGUINMAILS_", env_file=None, extra="ignore", validate_default=True
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()


__all__ = ["Settings", "get_settings", "reset_settings"]
