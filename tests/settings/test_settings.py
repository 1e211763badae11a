"""The one Settings object: every field documented, read from `PENGUINMAILS_*`, constraints
enforced with the field named, and the defaults the README's table promises."""

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

import settings
from settings import Settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """monkeypatch for the environment; the cached settings are forgotten before and after
    (after the environment is restored), so no other test sees what this one set."""
    settings.reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    settings.reset_settings()


def test_every_field_has_a_description() -> None:
    assert Settings.model_fields, "Settings declares no fields?"
    undocumented = [
        name
        for name, field in Settings.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undocumented == []


def test_every_subsystem_field_is_on_the_one_settings_object() -> None:
    from settings.core import CoreSettings
    from settings.dns import DnsSettings
    from settings.health import HealthSettings
    from settings.operations import OperationSettings
    from settings.stacks import StackSettings
    from settings.webhooks import WebhookSettings

    parts = (CoreSettings, DnsSettings, HealthSettings, OperationSettings, StackSettings)
    for part in (*parts, WebhookSettings):
        assert set(part.model_fields) <= set(Settings.model_fields), part.__name__


def test_the_prefix_reads_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PENGUINMAILS_WORKER_THREADS", "7")
    env.setenv("PENGUINMAILS_DNS_TIMEOUT_SECONDS", "3.5")
    env.setenv("PENGUINMAILS_DEFAULT_REGION", "us-east")
    env.setenv("PENGUINMAILS_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    settings.reset_settings()
    s = settings.get_settings()
    assert s.worker_threads == 7
    assert s.dns_timeout_seconds == 3.5
    assert s.default_region == "us-east"
    assert s.webhook_allow_private_urls is True


def test_a_variable_without_the_prefix_is_not_read(env: pytest.MonkeyPatch) -> None:
    env.delenv("PENGUINMAILS_WORKER_THREADS", raising=False)
    env.setenv("WORKER_THREADS", "9")
    settings.reset_settings()
    assert settings.get_settings().worker_threads == 2


def test_get_settings_is_cached_until_reset(env: pytest.MonkeyPatch) -> None:
    env.setenv("PENGUINMAILS_INBOXES_PER_SERVER", "11")
    settings.reset_settings()
    first = settings.get_settings()
    env.setenv("PENGUINMAILS_INBOXES_PER_SERVER", "12")
    assert settings.get_settings() is first
    assert settings.get_settings().inboxes_per_server == 11
    settings.reset_settings()
    assert settings.get_settings().inboxes_per_server == 12


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("PENGUINMAILS_WORKER_THREADS", "-1", "worker_threads"),  # ge=0
        ("PENGUINMAILS_WORKER_THREADS", "many", "worker_threads"),  # not an int
        ("PENGUINMAILS_DNS_TIMEOUT_SECONDS", "0", "dns_timeout_seconds"),  # gt=0
        ("PENGUINMAILS_DNS_TIMEOUT_SECONDS", "31", "dns_timeout_seconds"),  # le=30
        ("PENGUINMAILS_PORT", "65536", "port"),  # le=65535
        ("PENGUINMAILS_DKIM_ALGORITHM", "dsa", "dkim_algorithm"),  # rsa|ed25519
        (
            "PENGUINMAILS_HEALTH_DISK_WARNING_FREE_PERCENT",
            "101",
            "health_disk_warning_free_percent",
        ),
    ],
)
def test_an_invalid_value_is_refused_naming_the_field(
    env: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]
    assert field in str(caught.value)


def test_an_invalid_value_is_refused_when_constructed_too() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(lease_seconds=0)
    assert [e["loc"] for e in caught.value.errors()] == [("lease_seconds",)]


README_DEFAULTS = {
    "default_page_size": 50,
    "worker_threads": 2,
    "lease_seconds": 60,
    "max_body_bytes": 1_048_576,
    "port": 8000,
    "host": "127.0.0.1",
    "coalesce_seconds": 1.0,
    "max_attempts": 5,
    "retry_backoff_seconds": 5.0,
    "inboxes_per_server": 50,
    "default_region": "eu-central",
    "database_retry_after_seconds": 5,
    "allow_private_server_addresses": False,
}


def test_defaults_are_the_ones_the_readme_documents(env: pytest.MonkeyPatch) -> None:
    for name in README_DEFAULTS:
        env.delenv(f"PENGUINMAILS_{name.upper()}", raising=False)
    s = Settings()
    assert {name: getattr(s, name) for name in README_DEFAULTS} == README_DEFAULTS
    # The declared default too, not only what this environment happens to produce.
    assert {n: Settings.model_fields[n].default for n in README_DEFAULTS} == README_DEFAULTS
