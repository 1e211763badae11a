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
