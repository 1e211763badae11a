"""DNS connections (how a workspace writes into a DNS service) and the domains resource (each
mail domain with its connection, zone, publish state and verification summary).

Request bodies are one model per kind, chosen by `kind`: an unknown field, a field of another
kind or a bad value is a 422 naming it. Credentials are write-only: a read shows only which are
set (`credentials`), never a value."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from domain.validation import NoControlCharacters

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    NoControlCharacters,
]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
Server = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    NoControlCharacters,
]
KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    NoControlCharacters,
]
TsigAlgorithm = Literal[
    "hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"
]
KINDS = ("rfc2136", "lexicon", "cloudflare", "hetzner", "manual")
MxPolicy = Literal["keep", "replace"]


class _Create(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name = Field(description="Unique within the workspace.")


class Rfc2136Create(_Create):
    kind: Literal["rfc2136"]
    server: Server = Field(description="The primary's `host[:port]` (`[v6]:port`); port 53.")
    tsig_key_name: KeyName
    tsig_algorithm: TsigAlgorithm = "hmac-sha256"
    tsig_secret: Secret = Field(description="Base64 TSIG secret. Write-only.")


class LexiconCreate(_Create):
    kind: Literal["lexicon"]
    provider: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = Field(
        description="A dns-lexicon provider name (`GET` the lexicon docs for the list)."
    )
    options: dict[str, Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=dict,
        description="That provider's options by lexicon's names (auth_token, pdns_server, ...). "
        "All are stored encrypted; a read lists only their names.",
    )


class TokenCreate(_Create):
    kind: Literal["cloudflare", "hetzner"]
    api_token: Secret = Field(description="The provider's API token. Write-only.")


class ManualCreate(_Create):
    kind: Literal["manual"]


DnsConnectionCreate = Annotated[
    Rfc2136Create | LexiconCreate | TokenCreate | ManualCreate, Field(discriminator="kind")
]


class DnsConnectionUpdate(BaseModel):
    """Rename, or rotate credentials / change settings of the connection's own kind."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Name | None = None
    server: Server | None = None
    tsig_key_name: KeyName | None = None
    tsig_algorithm: TsigAlgorithm | None = None
    tsig_secret: Secret | None = None
    api_token: Secret | None = None
    options: dict[str, Annotated[str, StringConstraints(max_length=4096)]] | None = None


class DnsConnectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    kind: str
    settings: dict[str, Any] = Field(description="The plain settings; never a credential.")
    credentials: list[str] = Field(description="Names of the credentials set (never values).")
    created_at: datetime
    updated_at: datetime


class WorkspaceDnsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dns_connection_id: uuid.UUID | None = Field(
        description="The workspace's default DNS connection; null for manual."
    )

    @field_validator("dns_connection_id", mode="before")
    @classmethod
    def _uuid_text(cls, value: object) -> object:
        return uuid.UUID(value) if isinstance(value, str) else value


class DomainUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dns_connection_id: uuid.UUID | None = Field(
        default=None, description="This domain's own connection; null: the workspace's default."
    )
    zone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=253)] | None = Field(
        default=None, description="The zone its records go in; null: found by walking SOA records."
    )
    mx_policy: MxPolicy | None = Field(
        default=None, description="keep (a foreign MX is a conflict) or replace."
    )

    @field_validator("dns_connection_id", mode="before")
    @classmethod
    def _uuid_text(cls, value: object) -> object:
        return uuid.UUID(value) if isinstance(value, str) else value


class PublishSummary(BaseModel):
    status: str = Field(description="manual, pending, published, conflict or error (the worst).")
    counts: dict[str, int]


class VerificationSummary(BaseModel):
    verified: int
    total: int
    all_verified: bool


class DomainRead(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    dns_connection_id: uuid.UUID | None = Field(description="The domain's own connection.")
    effective_connection_id: uuid.UUID | None = Field(
        description="The connection its records are published through (its own, else the "
        "workspace's default); null: manual."
    )
    zone: str | None
    mx_policy: str
    publish: PublishSummary
    verification: VerificationSummary
