import uuid
from datetime import datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
)
from pydantic_core import PydanticCustomError

from domain.servers.catalog_rules import ProviderName, RegionName, SizeName
from domain.validation import Hostname, unicode_domain

# Addresses the control plane must never be pointed at (it connects to an `existing` server over
# SSH): the cloud metadata services first, since some sit inside ranges allowed below.
_METADATA = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, Hetzner, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "192.0.0.192",  # Oracle Cloud Classic
    )
)
_REFUSED = tuple(
    (kind, ip_network(net))
    for kind, nets in (
        ("an unspecified", ("0.0.0.0/8", "::/128")),
        ("a loopback", ("127.0.0.0/8", "::1/128")),
        ("a link-local", ("169.254.0.0/16", "fe80::/10")),
        ("a multicast", ("224.0.0.0/4", "ff00::/8")),
        # 240/4 includes the broadcast address; 192.0.0/24 is IETF protocol assignments,
        # 198.18/15 benchmarking, fec0::/10 the old site-local, 100::/64 discard-only.
        ("a reserved", ("240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10", "100::/64")),
    )
    for net in nets
)
_PRIVATE = tuple(
    ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def server_address_problem(
    address: IPv4Address | IPv6Address, *, allow_private: bool
) -> str | None:
    """Why `address` cannot be an existing server's, or None. Private ranges (RFC 1918, CGNAT,
    unique local) only with `allow_private` (PENGUINMAILS_ALLOW_PRIVATE_SERVER_ADDRESSES)."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return server_address_problem(address.ipv4_mapped, allow_private=allow_private)
    if address in _METADATA:
        return f"{address} is a cloud metadata address"
    for kind, net in _REFUSED:
        if address.version == net.version and address in net:
            return f"{address} is {kind} address"
    if not allow_private and any(
        address.version == net.version and address in net for net in _PRIVATE
    ):
        return (
            f"{address} is a private address (accepted only with "
            "PENGUINMAILS_ALLOW_PRIVATE_SERVER_ADDRESSES=true, for self-hosted networks)"
        )
    return None


def _ipv4_string(value: object) -> IPv4Address:
    """Only a JSON string is an address: the lax IPv4Address would take 3232235777 (or `true`)
    as an integer address."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return IPv4Address(value)
    except ValueError:
        raise PydanticCustomError("ip_v4_address", "Input is not a valid IPv4 address") from None


def _never_allowed(address: IPv4Address) -> IPv4Address:
    """The addresses refused whatever the settings say; private ranges depend on a setting and
    are checked by the service, which is given the settings (`servers.service.create`)."""
    problem = server_address_problem(address, allow_private=True)
    if problem is not None:
        raise PydanticCustomError(
            "server_address",
            "{problem}; an existing server needs its public address",
            {"problem": problem},
        )
    return address


ServerAddress = Annotated[
    IPv4Address, BeforeValidator(_ipv4_string), AfterValidator(_never_allowed)
]


class VpsCreate(BaseModel):
    # strict: no bool or float or string for ssh_port, no number for a string field
    model_config = ConfigDict(extra="forbid", strict=True)

    provider: ProviderName = Field(
        description="hetzner, hostwinds, or existing (a server you run)."
    )
    size: SizeName = Field(description="starter, professional or business.")
    region: RegionName = Field(description="e.g. eu-central, us-east.")
    hostname: Hostname | None = Field(
        default=None,
        description="Mail hostname (PTR and SMTP banner). Default: generated. An "
        "internationalised name is stored in its ASCII (IDNA) form.",
    )
    ip_address: ServerAddress | None = Field(
        default=None,
        description="Only for provider `existing`: the server's public IPv4 address. Loopback, "
        "link-local, multicast, reserved and cloud metadata addresses are refused; private "
        "ranges only with PENGUINMAILS_ALLOW_PRIVATE_SERVER_ADDRESSES.",
    )
    # The stack's `validate_ssh_user` rule (stacks.config._USER), as a pattern.
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

    @computed_field(description="`hostname` in Unicode form, for display.")
    def hostname_unicode(self) -> str:
        return unicode_domain(self.hostname)
