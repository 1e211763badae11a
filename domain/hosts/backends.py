"""Where the live engine keeps Pulumi state, and whether that is safe on this deployment.

Resolution (`resolve`), first match wins:

1. `PENGUINMAILS_PULUMI_BACKEND_URL`: used as given (file://, postgres://, s3://, azblob://,
   gs://, https://api.pulumi.com, ...).
2. `PULUMI_BACKEND_URL` in the process environment: used as given.
3. `PENGUINMAILS_DATABASE_URL` set: the same Postgres through Pulumi's DIY postgres backend
   (Pulumi >= 3.177), table `PENGUINMAILS_PULUMI_STATE_TABLE` (default `pulumi_state`), so every
   host shares state and stack locks with no other infrastructure. The SQLAlchemy URL
   (`postgresql+psycopg://user:pw@host:port/db?sslmode=require`) becomes
   `postgres://user@host:port/db?sslmode=require&table=pulumi_state`: user, host (IPv6 in
   brackets), port and database percent-encoded, every query option (libpq keywords: sslmode,
   sslrootcert, connect_timeout, options, a `host=` socket directory, ...) carried over in
   order, `table` added. The password is not in the URL: it goes to the Pulumi CLI as
   `PGPASSWORD` in its environment (libpq's variable, which Go's Postgres drivers read too), so
   the URL can be shown, logged and written into a work dir's settings.
4. Otherwise (the embedded Postgres, which only this machine reaches): a file backend in
   `DATA_DIR/pulumi/state`. That file backend also stays when DATABASE_URL is set but it
   already holds stacks (an installation from before the postgres default): switching would
   show those stacks empty and order every server again. Move them first (docs/deployment.md).

A file backend is machine-local: `check` refuses live stacks on it once workers of another host
are registered against the same database (`domain.hosts.service`).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from domain.hosts.service import Finding, shared_state_finding
from kit.time import utcnow
from settings import Settings

_KINDS = {
    "file": "file",
    "postgres": "postgres",
    "postgresql": "postgres",
    "s3": "s3",
    "azblob": "azblob",
    "gs": "gs",
    "https": "cloud",
    "http": "cloud",
}
_UNSAFE_PATH = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Backend:
    """A resolved backend. `url` is what Pulumi is given; `env` holds what must reach the CLI
    beside it and is never shown (`PGPASSWORD` for a backend derived from DATABASE_URL)."""

    url: str
    source: str  # "setting" | "environment" | "database" | "default"
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        scheme = urlsplit(self.url).scheme.lower()
        return _KINDS.get(scheme, scheme or "cloud")

    @property
    def local(self) -> bool:
        """State on this machine only (a file backend), so not shared with other hosts."""
        return self.kind == "file"

    @property
    def path(self) -> Path | None:
        if self.kind != "file":
            return None
        return Path(unquote(urlsplit(self.url).path))

    @property
    def display(self) -> str:
        """The URL with any password replaced, for logs and messages."""
        return redact(self.url)

    def __repr__(self) -> str:
        return f"Backend({self.display!r}, source={self.source!r})"

    __str__ = __repr__


def redact(url: str) -> str:
    """`url` with the password of its user part and any `password=` option replaced."""
    parts = urlsplit(url)
    if parts.password is not None:
        user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
        parts = parts._replace(netloc=f"{user}:***@{parts.netloc.rsplit('@', 1)[1]}")
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query, flags=re.I)
    return urlunsplit(parts._replace(query=query))


def postgres_url(database_url: str, table: str) -> Backend:
    """The DIY postgres backend's URL for a SQLAlchemy Postgres URL (rule 3 above)."""
    url = make_url(database_url)
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(
            f"PENGUINMAILS_DATABASE_URL is not a Postgres URL ({url.drivername}); set "
            "PENGUINMAILS_PULUMI_BACKEND_URL explicitly"
        )
    netloc = ""
    if url.username:
        netloc = quote(url.username, safe="") + "@"
    if url.host:
        host = url.host
        netloc += f"[{host}]" if ":" in host else quote(host, safe="")
    if url.port is not None:
        netloc += f":{url.port}"
    path = "/" + quote(url.database, safe="") if url.database else ""
    query: list[tuple[str, str]] = []
    password = url.password
    for key, value in url.query.items():
        for one in (value,) if isinstance(value, str) else value:
            if key == "password":  # libpq's keyword form of the password: not in the URL either
                password = one
            elif key != "table":
                query.append((key, one))
    query.append(("table", table))
    env = {"PGPASSWORD": str(password)} if password else {}
    return Backend(
        urlunsplit(("postgres", netloc, path, urlencode(query, quote_via=quote), "")),
        "database",
        env,
    )


def resolve(settings: Settings, environ: Mapping[str, str] | None = None) -> Backend:
    environ = os.environ if environ is None else environ
    if settings.pulumi_backend_url:
        return Backend(settings.pulumi_backend_url, "setting")
    if environ.get("PULUMI_BACKEND_URL"):
        return Backend(environ["PULUMI_BACKEND_URL"], "environment")
    state = Path(settings.data_dir).resolve() / "pulumi" / "state"
    if settings.database_url and not holds_stacks(state):
        return postgres_url(settings.database_url, settings.pulumi_state_table)
    # The embedded default; or stacks already kept in the file backend before the database
    # became the default: switching under them would show empty stacks and order every server
    # again, so they stay until moved (docs/deployment.md, "Moving file state to Postgres").
    return Backend(state.as_uri(), "default" if not settings.database_url else "existing-file")


def holds_stacks(state: Path) -> bool:
    """A file backend directory with at least one stack in it."""
    stacks = state / ".pulumi" / "stacks"
    return stacks.is_dir() and any(p.is_file() for p in stacks.rglob("*.json*"))


def host_name(settings: Settings) -> str:
    """This machine's name in heartbeats, lease owners and per-host directories."""
    return settings.host_name or socket.gethostname()


def host_dir(settings: Settings) -> Path:
    """DATA_DIR/pulumi/hosts/HOST: this host's Pulumi home and work dirs, so a data directory
    on shared storage never has two hosts installing plugins or writing one work dir."""
    name = _UNSAFE_PATH.sub("_", host_name(settings))
    return Path(settings.data_dir).resolve() / "pulumi" / "hosts" / name


def check(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Finding | None:
    """Why this host must not run live stacks now, or None: its backend is machine-local and
    another host's workers are registered (seen within `host_stale_seconds`)."""
    backend = resolve(settings, environ)
    since = (now or utcnow()) - timedelta(seconds=settings.host_stale_seconds)
    return shared_state_finding(
        session, since=since, this_host=host_name(settings), this_backend_local=backend.local
    )


def deployment_finding(
    session: Session, settings: Settings, *, now: datetime | None = None
) -> Finding | None:
    """The preflight's view from any process: workers of several hosts, one of them on a
    machine-local backend. (`api` may call `domain.hosts.service.shared_state_finding` itself.)"""
    since = (now or utcnow()) - timedelta(seconds=settings.host_stale_seconds)
    return shared_state_finding(session, since=since)
