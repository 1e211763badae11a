import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    computed_field,
)

from domain.servers.catalog_rules import ProviderName, RegionName, SizeName
from domain.validation import EmailAddress, NoControlCharacters, unicode_address
from domain.warmup.ramp import next_step_at

DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=255), NoControlCharacters
]


class InboxCreate(BaseModel):
    # strict: a string field takes only a string (no number, no boolean)
    model_config = ConfigDict(extra="forbid", strict=True)

    email_address: EmailAddress = Field(
        description="The mailbox address. An internationalised domain (`info@bücher.example`) "
        "is stored and used in its ASCII form (`info@xn--bcher-kva.example`); reads show both. "
        "Refused (422) when the stack would refuse it: the same validators decide."
    )
    display_name: DisplayName | None = Field(default=None, description="Name shown to recipients.")
    vps_provider: ProviderName = Field(description="hetzner, hostwinds or existing.")
    vps_size: SizeName = Field(description="starter, professional or business.")
    vps_region: RegionName | None = Field(
        default=None, description="Region of a new server (default PENGUINMAILS_DEFAULT_REGION)."
    )


class InboxUpdate(BaseModel):
    # strict: daily_send_limit only an integer (not true, 5.0 or "5"), a string only a string
    model_config = ConfigDict(extra="forbid", strict=True)

    daily_send_limit: int | None = Field(default=None, ge=1, le=10000, strict=True)
    warmup_enabled: StrictBool | None = Field(
        default=None, description="true starts the warmup ramp (docs/warmup.md); false stops it."
    )
    warmup_start_daily: int | None = Field(
        default=None, ge=1, le=10000, strict=True, description="Overrides the policy's day-1 step."
    )
    warmup_daily_increase: int | None = Field(
        default=None, ge=0, le=10000, strict=True, description="Overrides the policy's +N a day."
    )
    display_name: DisplayName | None = None


class WarmupView(BaseModel):
    status: str | None
    day: int | None = Field(description="Ramp day (1-based) while warming; null otherwise.")
    started_at: datetime | None
    next_step_at: datetime | None = Field(
        description="When the next ramp day begins if the day stays clean; null unless in_progress."
    )
    paused_reason: str | None = Field(description="blocklist, server_critical or dns.")


class SendingView(BaseModel):
    effective_daily_limit: int | None = Field(
        description="The cap the mail server enforces: min(daily_send_limit, ramp step or the "
        "floor while held, the domain's and the server's share). Null until first computed."
    )
    hold_reason: str | None = Field(
        description="Why the cap is at the floor (blocklist, server_critical, dns); null if not."
    )
    warmup: WarmupView


class InboxRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID
    email_address: str
    display_name: str | None
    vps_id: uuid.UUID | None
    status: str | None
    warmup_enabled: bool | None
    warmup_status: str | None
    daily_send_limit: int | None
    reputation_score: float | None
    smtp_config: dict[str, Any] | None
    imap_config: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None
    effective_daily_limit: int | None = Field(default=None, exclude=True)
    warmup_day: int | None = Field(default=None, exclude=True)
    warmup_started_at: datetime | None = Field(default=None, exclude=True)
    warmup_paused_seconds: int | None = Field(default=None, exclude=True)
    hold_reason: str | None = Field(default=None, exclude=True)

    @computed_field(description="`email_address` with its domain in Unicode form, for display.")
    def email_address_unicode(self) -> str:
        return unicode_address(self.email_address)

    @computed_field(description="What the mail server enforces and where the warmup ramp is.")
    def sending(self) -> SendingView:
        warming = self.warmup_status in ("in_progress", "paused")
        next_step = None
        if self.warmup_status == "in_progress" and self.warmup_started_at and self.warmup_day:
            next_step = next_step_at(
                self.warmup_started_at, self.warmup_paused_seconds or 0, self.warmup_day
            )
        return SendingView(
            effective_daily_limit=self.effective_daily_limit,
            hold_reason=self.hold_reason,
            warmup=WarmupView(
                status=self.warmup_status,
                day=self.warmup_day if warming else None,
                started_at=self.warmup_started_at if warming else None,
                next_step_at=next_step,
                paused_reason=self.hold_reason if self.warmup_status == "paused" else None,
            ),
        )


class Endpoint(BaseModel):
    host: str
    port: int
    security: str


class Credentials(BaseModel):
    """Shown once, when the inbox is created or its credentials rotated."""

    username: str
    password: str
    smtp: Endpoint
    imap: Endpoint


class InboxAccepted(InboxRead):
    operation_id: uuid.UUID
    credentials: Credentials | None = None
