"""Where the live engine keeps Pulumi state (`domain.hosts.backends.resolve`), every case: the
embedded default, the operator's own Postgres (options, odd characters, sockets, IPv6), an
explicit file/s3/azblob/gs/Pulumi Cloud URL, PULUMI_BACKEND_URL, and what reaches the CLI."""

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from automation.live import LiveEngine
from domain.hosts.backends import Backend, host_dir, host_name, postgres_url, redact, resolve
from settings import get_settings
from tests.support.fixtures import OverrideSettings

NO_ENV: dict[str, str] = {}


@pytest.fixture
def plain(override_settings: OverrideSettings, tmp_path: Path) -> OverrideSettings:
    """No backend and no database configured, data in tmp_path; each test adds what it needs."""
    override_settings(
        database_url=None,
        pulumi_backend_url=None,
        pulumi_state_table=None,
        pulumi_home=None,
        pulumi_work_root=None,
        host_name=None,
        data_dir=tmp_path,
    )
    return override_settings


def test_embedded_default_keeps_the_file_backend_in_the_data_dir(
    plain: OverrideSettings, tmp_path: Path
) -> None:
    backend = resolve(get_settings(), NO_ENV)
    assert backend.url == (tmp_path / "pulumi" / "state").resolve().as_uri()
    assert backend.source == "default" and backend.kind == "file" and backend.local
    assert backend.path == (tmp_path / "pulumi" / "state").resolve()
    assert backend.env == {}


def test_own_postgres_becomes_the_postgres_backend_on_the_same_database(
    plain: OverrideSettings,
) -> None:
    plain(database_url="postgresql+psycopg://penguin:s3cret@db.internal:5433/penguinmails")
    backend = resolve(get_settings(), NO_ENV)
    assert backend.url == "postgres://penguin@db.internal:5433/penguinmails?table=pulumi_state"
    assert backend.source == "database" and backend.kind == "postgres" and not backend.local
    assert backend.env == {"PGPASSWORD": "s3cret"}  # the password reaches the CLI, not the URL
    assert "s3cret" not in repr(backend) and "s3cret" not in str(backend)
    assert "s3cret" not in backend.display


def test_postgres_options_are_carried_over_and_the_table_is_configurable(
    plain: OverrideSettings,
) -> None:
    plain(
        database_url=(
            "postgresql+psycopg://svc@db:5432/pm?sslmode=verify-full"
            "&sslrootcert=/etc/ssl/ca.pem&connect_timeout=5&application_name=pm"
            "&options=-csearch_path%3Dpulumi&table=ignored"
        ),
        pulumi_state_table="penguinmails_pulumi_state",
    )
    url = resolve(get_settings(), NO_ENV).url
    parts = urlsplit(url)
    assert parts.scheme == "postgres" and parts.netloc == "svc@db:5432" and parts.path == "/pm"
    assert parse_qsl(parts.query) == [
        ("sslmode", "verify-full"),
        ("sslrootcert", "/etc/ssl/ca.pem"),
        ("connect_timeout", "5"),
        ("application_name", "pm"),
        ("options", "-csearch_path=pulumi"),
        ("table", "penguinmails_pulumi_state"),
    ]


def test_stacks_already_in_the_file_backend_keep_it_until_moved(
    plain: OverrideSettings, tmp_path: Path
) -> None:
    plain(database_url="postgresql+psycopg://u:pw@db/pm")
    state = tmp_path / "pulumi" / "state"
    (state / ".pulumi" / "stacks" / "penguinmails").mkdir(parents=True)
    # An empty file backend (created, never used) does not hold anything back.
    assert resolve(get_settings(), NO_ENV).kind == "postgres"
    (state / ".pulumi" / "stacks" / "penguinmails" / "ws-1.json").write_text("{}")
    kept = resolve(get_settings(), NO_ENV)
    assert (kept.url, kept.source, kept.local) == (state.resolve().as_uri(), "existing-file", True)


@pytest.mark.parametrize(
    ("database_url", "url", "env"),
    [
        # Reserved characters in user, password and database are percent-encoded (or moved out).
        (
            "postgresql+psycopg://us%40er:p%40ss%3Aw%2Frd@db/my%20db",
            "postgres://us%40er@db/my%20db?table=pulumi_state",
            {"PGPASSWORD": "p@ss:w/rd"},
        ),
        # No password, no port: none invented (libpq's defaults and PG* variables apply).
        ("postgresql://penguin@db/pm", "postgres://penguin@db/pm?table=pulumi_state", {}),
        # psycopg2 / bare postgres spellings of the same URL.
        (
            "postgresql+psycopg2://u:pw@db:6432/pm",
            "postgres://u@db:6432/pm?table=pulumi_state",
            {"PGPASSWORD": "pw"},
        ),
        # IPv6 literal: back in brackets.
        (
            "postgresql+psycopg://u:pw@[2001:db8::5]:5432/pm",
            "postgres://u@[2001:db8::5]:5432/pm?table=pulumi_state",
            {"PGPASSWORD": "pw"},
        ),
        # A Unix socket directory given as the host option.
        (
            "postgresql+psycopg://u@/pm?host=/var/run/postgresql",
            "postgres://u@/pm?host=%2Fvar%2Frun%2Fpostgresql&table=pulumi_state",
            {},
        ),
        # libpq's password keyword is a password too: out of the URL.
        (
            "postgresql+psycopg://u@db/pm?password=hunter2&sslmode=require",
            "postgres://u@db/pm?sslmode=require&table=pulumi_state",
            {"PGPASSWORD": "hunter2"},
        ),
    ],
)
def test_postgres_url_translation(database_url: str, url: str, env: dict[str, str]) -> None:
    backend = postgres_url(database_url, "pulumi_state")
    assert backend.url == url
    assert dict(backend.env) == env


def test_a_database_url_that_is_not_postgres_is_refused() -> None:
    with pytest.raises(ValueError, match="PULUMI_BACKEND_URL"):
        postgres_url("sqlite:///x.db", "pulumi_state")


def test_a_bad_state_table_name_is_refused(plain: OverrideSettings) -> None:
    with pytest.raises(ValueError):
        plain(pulumi_state_table="pulumi; drop table x")
        get_settings()


@pytest.mark.parametrize(
    ("url", "kind", "local"),
    [
        ("file:///srv/pulumi-state", "file", True),
        ("s3://bucket/penguinmails?region=eu-central-1", "s3", False),
        ("azblob://container", "azblob", False),
        ("gs://bucket/prefix", "gs", False),
        ("https://api.pulumi.com", "cloud", False),
        ("postgres://pulumi:pw@statedb/pulumi", "postgres", False),
    ],
)
def test_an_explicit_backend_url_wins_over_the_database(
    plain: OverrideSettings, url: str, kind: str, local: bool
) -> None:
    plain(
        pulumi_backend_url=url,
        database_url="postgresql+psycopg://u:pw@db/pm",
    )
    env = {"PULUMI_BACKEND_URL": "gs://not-this-one"}
    backend = resolve(get_settings(), env)
    assert (backend.url, backend.source, backend.kind, backend.local) == (
        url,
        "setting",
        kind,
        local,
    )
    assert backend.env == {}


def test_pulumi_backend_url_from_the_environment_wins_over_the_database(
    plain: OverrideSettings,
) -> None:
    plain(database_url="postgresql+psycopg://u:pw@db/pm")
    backend = resolve(get_settings(), {"PULUMI_BACKEND_URL": "s3://shared-state"})
    assert (backend.url, backend.source, backend.local) == (
        "s3://shared-state",
        "environment",
        False,
    )
    # ...and a file:// one there is still machine-local.
    local = resolve(get_settings(), {"PULUMI_BACKEND_URL": "file:///var/lib/pulumi"})
    assert local.local and local.path == Path("/var/lib/pulumi")


def test_redact_hides_passwords_in_user_info_and_options() -> None:
    assert redact("postgres://u:pw@db/pm?table=t") == "postgres://u:***@db/pm?table=t"
    assert redact("postgres://u@db/pm?password=pw&x=1") == "postgres://u@db/pm?password=***&x=1"
    assert redact("s3://bucket") == "s3://bucket"
    assert "pw" not in repr(Backend("postgres://u:pw@db/pm", "setting"))


def test_the_cli_gets_the_backend_and_its_password_in_its_environment_only(
    plain: OverrideSettings, tmp_path: Path
) -> None:
    plain(
        database_url="postgresql+psycopg://penguin:s3cret@db:5432/pm?sslmode=require",
        host_name="worker-a",
    )
    live = LiveEngine(passphrase="p", plugins={})
    env = live.env()
    assert (
        env["PULUMI_BACKEND_URL"]
        == "postgres://penguin@db:5432/pm?sslmode=require&table=pulumi_state"
    )
    assert env["PGPASSWORD"] == "s3cret"
    # Per host: this host's own home and work dirs under the data directory.
    assert live.pulumi_home == tmp_path.resolve() / "pulumi" / "hosts" / "worker-a" / "home"
    assert live.work_root == tmp_path.resolve() / "pulumi" / "hosts" / "worker-a" / "workspaces"


def test_host_name_defaults_to_the_system_name_and_paths_are_safe(
    plain: OverrideSettings, tmp_path: Path
) -> None:
    import socket

    assert host_name(get_settings()) == socket.gethostname()
    plain(host_name="eu-1.workers.internal")
    assert (
        host_dir(get_settings())
        == tmp_path.resolve() / "pulumi" / "hosts" / "eu-1.workers.internal"
    )
    with pytest.raises(ValueError):
        plain(host_name="../etc")
        get_settings()


def test_engine_errors_never_carry_the_database_password(plain: OverrideSettings) -> None:
    from pulumi import automation as auto
    from pulumi.automation._cmd import CommandResult

    plain(database_url="postgresql+psycopg://penguin:s3cret@db/pm")
    live = LiveEngine(passphrase="p", plugins={})
    error = live._translate(
        auto.errors.CommandError(
            CommandResult(stdout="", stderr="error: could not log in: password=s3cret", code=255)
        )
    )
    assert "s3cret" not in error.message and "***" in error.message
