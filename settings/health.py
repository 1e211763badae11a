"""Health probes and the monitoring.health sweep."""

from pydantic_settings import BaseSettings


class HealthSettings(BaseSettings):
    pass
