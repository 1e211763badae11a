"""The web console (`/console`) and the Prometheus endpoint (`/metrics`)."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class ConsoleSettings(BaseSettings):
    console_session_seconds: int = Field(
        default=8 * 3600,
        ge=60,
        le=30 * 86400,
        description="How long a console sign-in lasts; the session cookie expires with it.",
    )
    console_page_size: int = Field(
        default=50, ge=5, le=500, description="Rows per table page in the console."
    )
    console_refresh_seconds: float = Field(
        default=2.0, gt=0, le=300, description="How often live parts of console pages refresh."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Bearer token that `GET /metrics` requires. Unset: /metrics answers 404 (off)."
        ),
    )
