"""Settings every process needs: where data lives, which database, the secrets key, the API."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class CoreSettings(BaseSettings):
    data_dir: Path = Field(
        default=Path(".penguinmails"),
        description=(
            "Directory for the embedded Postgres, the generated secret key and Pulumi state."
        ),
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the Postgres to use (postgresql+psycopg://...). "
            "Unset: an embedded Postgres is started in DATA_DIR/pgdata."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that encrypts secrets at rest. Required with DATABASE_URL; on the embedded "
            "default it is generated once into DATA_DIR/secret_key (mode 0600)."
        ),
    )
    log_level: str = Field(default="INFO", description="Root log level.")
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    default_page_size: int = Field(
        default=50, ge=1, le=500, description="Items per page when a list request sets no limit."
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description=(
            "Largest request body the API reads, in bytes (default 1 MiB). A larger one is "
            "answered 413 `payload_too_large`: at once when Content-Length says so, else as soon "
            "as the streamed bytes pass the limit (the rest is never read)."
        ),
    )
    database_retry_after_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description=(
            "Retry-After (seconds) sent with the 503 `database_unavailable` answered while the "
            "database cannot be reached."
        ),
    )
    idempotency_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description=(
            "How long the answer to a create made with an `Idempotency-Key` is kept and "
            "replayed (default 24 hours). An older key counts as unused: the create runs again. "
            "Expired keys are purged by the `idempotency.purge` job."
        ),
    )
    api_key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description=(
            "How long each API process keeps a key it has authenticated before reading it "
            "again (0: every request). A revoked key is refused by every process within this "
            "bound; by the process that revoked it at once."
        ),
    )
    api_threads: int = Field(
        default=40,
        ge=1,
        le=1000,
        description=(
            "Threads the API runs sync handlers and dependencies on; its database pool holds "
            "as many connections, so no request waits for a connection it could not use."
        ),
    )
