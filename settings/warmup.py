"""Warmup ramps and enforced sending caps (docs/warmup.md)."""

from pydantic import Field
from pydantic_settings import BaseSettings


class WarmupSettings(BaseSettings):
    warmup_interval_seconds: float = Field(
        default=900.0,
        gt=0,
        description="How often the `inbox.warmup` sweep runs. The ramp is computed from dates, "
        "so a longer interval (or a missed run) only delays a step, never skips or repeats one.",
    )
