from datetime import datetime

from pydantic import BaseModel, Field


class DnsRecordRead(BaseModel):
    """One record the inbox's domain needs, in the seed's shape plus why it is not verified."""

    type: str = Field(description="A, AAAA, MX, TXT, PTR or SRV.")
    name: str = Field(
        description="Relative to the domain ('@' is the apex); absolute with a trailing dot "
        "when it lies outside the domain (the PTR in the IP's reverse zone)."
    )
    value: str = Field(
        description="The exact value to publish. TXT values over 255 characters are shown "
        "as the quoted strings a zone file needs."
    )
    status: str = Field(description="pending, verified, missing, mismatch, invalid or error.")
    detail: str | None = Field(description="What was found and what was expected.")
    required: bool = Field(description="False for recommended extras that never block ready.")
    last_verified_at: datetime | None
    last_checked_at: datetime | None
    purpose: str = Field(description="mx, a, spf, dkim, dmarc, ptr, mta_sts, tls_rpt, srv_*.")
    domain: str
    ttl: int | None
    zone_line: str = Field(description="The record as one zone-file line.")
    publish: "RecordPublish" = Field(
        description="Whether the record is published through a DNS connection, and how that went."
    )


class DnsRecordsView(BaseModel):
    records: list[DnsRecordRead]
    all_verified: bool = Field(description="Every required record is verified.")


class RecordPublish(BaseModel):
    status: str = Field(description="manual, pending, published, conflict or error.")
    detail: str | None = Field(description="What was done, or what the DNS service said.")
    published_at: datetime | None


DnsRecordRead.model_rebuild()
