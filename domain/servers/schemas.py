import uuid
from datetime import datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.servers.catalog_rules import ProviderName, RegionName, SizeName

Hostname = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=253,
        pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    ),
]


class VpsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: ProviderName = Field(
        description="hetzner, hostwinds, or existing (a server you run)."
    )
    size: SizeName = Field(description="starter, professional or business.")
    region: RegionName = Field(description="e.g. eu-central, us-east.")
    hostname: Hostname | None = Field(
        default=None, description="Mail hostname (PTR and SMTP banner). Default: generated."
    )
    ip_address: IPv4Address | None = Field(
        default=None, description="Only for provider `existing`: the server's public IPv4."
    )
    ssh_user: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] = Field(
        default="root", description="Only for provider `existing`."
    )
    ssh_port: int = Field(default=22, ge=1, le=65535, description="Only for provider `existing`.")


class VpsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    provider: str
    provider_server_id: str | None
    ip_address: IPv4Address | IPv6Address | None
    ipv6_address: IPv4Address | IPv6Address | None
    hostname: str
    size: str
    region: str
    specs: dict[str, Any] | None
    status: str | None
    status_reason: str | None
    mail_server_status: str | None
    stalwart_version: str | None
    ssl_certificate_expires: datetime | None
    monitoring_enabled: bool | None
    monthly_cost: Decimal | None
    created_at: datetime | None
    engine: str = "sandbox"
    inbox_count: int = 0
    health: list[dict[str, Any]] = Field(default_factory=list)
