"""DNS lookups, record generation and the dns.verify sweep."""

import os

from pydantic import Field
from pydantic_settings import BaseSettings


class DnsSettings(BaseSettings):
    dns_nameservers: str | None = Field(
        default=None,
        description=(
            "Comma-separated host[:port] list every DNS lookup goes to (IPv6 as [addr]:port). "
            "Unset: the nameservers of /etc/resolv.conf."
        ),
    )
    dns_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="How long one DNS query waits for an answer."
    )
    dns_attempts: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Tries per DNS query (rotating through the nameservers) before it is an error.",
    )
    dns_concurrency: int = Field(
        default=256, ge=1, le=5000, description="DNS queries in flight at once per process."
    )
    dns_verify_interval_seconds: int = Field(
        default=300,
        ge=10,
        description="How often dns.verify runs, and how soon a record not yet verified is "
        "checked again.",
    )
    dns_reverify_seconds: int = Field(
        default=86400,
        ge=60,
        description="How often a verified record is checked again to catch regressions.",
    )
    dns_claim_seconds: int = Field(
        default=300,
        ge=10,
        description="How long a sweep worker holds claimed records before another worker may "
        "take them (a worker that died releases its claim this way).",
    )
    dns_batch_size: int = Field(
        default=5000, ge=1, description="Records one sweep worker claims and checks at a time."
    )
    dns_verify_processes: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 8),
        ge=1,
        le=64,
        description="Processes a dns.verify sweep uses when it finds more than one batch due: "
        "the sweep itself and up to this many minus one helpers, each claiming and checking "
        "its own batches with its own resolver and database connections (the lookups and "
        "their parsing are CPU-bound past a few thousand records). Default: the CPU count, at "
        "most 8; 1 keeps the sweep in one process.",
    )
    dns_publish_first_check_seconds: float = Field(
        default=3,
        ge=0,
        le=300,
        description="After a run publishes a domain's records: how soon they are checked again "
        "(the fast path to ready).",
    )
    dns_publish_backoff_seconds: str = Field(
        default="15,60,120,300",
        description="Then, while they do not verify: the waits between checks, in seconds; past "
        "the last, the normal interval (PENGUINMAILS_DNS_VERIFY_INTERVAL_SECONDS) applies.",
    )
    dns_fast_poll_seconds: float = Field(
        default=5,
        ge=1,
        le=300,
        description="How often dns.verify looks for due records (it checks only those whose time "
        "has come, so this is cheap); bounds how late the fast path's checks run.",
    )
    dns_publish_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="How long one request to a DNS service waits."
    )
    dns_record_ttl: int = Field(
        default=3600, ge=60, description="TTL suggested for the records users publish."
    )
    dns_dmarc_rua: str = Field(
        default="mailto:dmarc@{domain}",
        description="DMARC aggregate report address in generated records; {domain} is "
        "replaced by the mail domain.",
    )
    dns_tlsrpt_rua: str = Field(
        default="mailto:tls-reports@{domain}",
        description="TLS-RPT report address in generated records; {domain} as above.",
    )
    dkim_rsa_bits: int = Field(
        default=2048, ge=1024, le=4096, description="Size of generated RSA DKIM keys."
    )
    dkim_algorithm: str = Field(
        default="rsa",
        pattern="^(rsa|ed25519)$",
        description="Key type of newly generated DKIM keys: rsa or ed25519.",
    )
