from pydantic import BaseModel, ConfigDict, Field


class WarmupPolicyBody(BaseModel):
    """A workspace's warmup policy (docs/warmup.md); every field has the documented default."""

    model_config = ConfigDict(extra="forbid", strict=True)

    start_daily: int = Field(default=5, ge=1, le=10000, description="Ramp day 1's step.")
    daily_increase: int = Field(default=2, ge=0, le=10000, description="Added each clean day.")
    domain_daily_cap: int | None = Field(
        default=150,
        ge=1,
        le=1_000_000,
        description="A domain's daily total, shared by its inboxes.",
    )
    server_daily_cap: int | None = Field(
        default=None, ge=1, le=1_000_000, description="A server's daily total, shared likewise."
    )
    floor_daily: int = Field(default=5, ge=1, le=10000, description="The cap while held.")
    clear_seconds: int = Field(
        default=86400,
        ge=0,
        le=30 * 86400,
        description="How long a cause must stay clear before a hold is released.",
    )


class WarmupPolicyRead(WarmupPolicyBody):
    model_config = ConfigDict(from_attributes=True)
