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
    warmup_enabled: StrictBool | None = None
    display_name: DisplayName | None = None


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

    @computed_field(description="`email_address` with its domain in Unicode form, for display.")
    def email_address_unicode(self) -> str:
        return unicode_address(self.email_address)


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
