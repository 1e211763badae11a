"""DNS lookups and the dns.verify sweep."""

from pydantic import Field
from pydantic_settings import BaseSettings


class DnsSettings(BaseSettings):
    dns_nameservers: str | None = Field(
        default=None,
        description=(
            "Comma-separated host[:port] list every DNS lookup goes to. Unset: the system resolver."
        ),
    )
