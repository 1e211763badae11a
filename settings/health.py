"""Health probes, the monitoring.health sweep and alerts (webhook delivery: `settings.webhooks`)."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class HealthSettings(BaseSettings):
    # Ports probed on every server (tests point them at loopback listeners).
    health_smtp_port: int = Field(
        default=25, ge=1, le=65535, description="SMTP port: 220 banner, EHLO, STARTTLS offered."
    )
    health_submissions_port: int = Field(
        default=465, ge=1, le=65535, description="Implicit-TLS submission port (handshake, cert)."
    )
    health_imaps_port: int = Field(
        default=993, ge=1, le=65535, description="IMAPS port (handshake, certificate)."
    )
    health_https_port: int = Field(
        default=443,
        ge=1,
        le=65535,
        description="Stalwart's HTTPS port: certificate, /healthz/ready and the queue API.",
    )
    health_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of trusted roots for certificate checks. Unset: the system store.",
    )
    health_probe_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Upper bound on one check of one server, connect included."
    )
    health_concurrency: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Network steps working at once across the sweep (one socket each). A step "
        "that waits much longer than its peers (a slow or hung server) gives its slot back and "
        "waits on its own deadline (probes/slots.py).",
    )
    health_probe_processes: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Processes the sweep's probes run in, each with its own event loop and a "
        "share of the servers and of health_concurrency (probes/shards.py): TLS and SSH "
        "handshakes are CPU work, so one per core. Sweeps of fewer than 100 servers per process "
        "stay in one. 1: in the sweep's own process.",
    )
    health_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often the monitoring.health sweep runs."
    )
    health_retention_days: int = Field(
        default=30, ge=1, description="Health results older than this are deleted by the sweep."
    )
    # TLS certificate expiry.
    health_tls_warning_days: float = Field(
        default=14.0, ge=0, description="A certificate expiring within this many days: warning."
    )
    health_tls_critical_days: float = Field(
        default=2.0,
        ge=0,
        description="A certificate expiring within this many days (or expired): critical.",
    )
    health_hetzner_api_url: str = Field(
        default="https://api.hetzner.cloud/v1",
        description="Hetzner Cloud API the reachable check asks whether a live Hetzner server is "
        "running (uses PENGUINMAILS_HETZNER_TOKEN; unset token: not asked).",
    )
    # Disk space over SSH.
    health_disk_path: str = Field(
        default="/var/lib/stalwart",
        pattern=r"^/[A-Za-z0-9._/-]*$",
        description="Mount point or directory of the mail data volume, measured with `df`.",
    )
    health_disk_warning_free_percent: float = Field(
        default=30.0, ge=0, le=100, description="Free space below this percentage: warning."
    )
    health_disk_critical_free_percent: float = Field(
        default=15.0, ge=0, le=100, description="Free space below this percentage: critical."
    )
    # Outbound queue (Stalwart v0.15 REST /api/queue/messages).
    health_queue_warning_size: int = Field(
        default=10, ge=0, description="Messages waiting in the outbound queue: warning at this."
    )
    health_queue_critical_size: int = Field(
        default=30, ge=0, description="Messages waiting in the outbound queue: critical at this."
    )
    health_queue_warning_age_seconds: float = Field(
        default=3600.0, ge=0, description="Oldest queued message older than this: warning."
    )
    health_queue_critical_age_seconds: float = Field(
        default=6 * 3600.0, ge=0, description="Oldest queued message older than this: critical."
    )
    health_queue_page_size: int = Field(
        default=100, ge=1, le=1000, description="Queued messages read to find the oldest one."
    )
    # Blocklists.
    health_dnsbl_zones: str = Field(
        default="zen.spamhaus.org",
        description="Comma-separated DNSBL zones the server's IPv4 address is looked up in.",
    )
    health_dnsbl_domain_zones: str = Field(
        default="dbl.spamhaus.org",
        description="Comma-separated domain blocklists (Spamhaus DBL, SURBL, URIBL...) the "
        "domains of a server's inboxes are looked up in.",
    )
    health_dnsbl_dqs_key: SecretStr | None = Field(
        default=None,
        description="Spamhaus Data Query Service key: Spamhaus zones are then asked as "
        "<reversed>.<key>.zen.dq.spamhaus.net. Strongly recommended: Spamhaus refuses queries "
        "from public resolvers and big cloud networks (127.255.255.254).",
    )
    health_dnsbl_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Each list is asked about each address or domain at most once per this "
        "interval across all workers; the answer is shared by every server and domain.",
    )
    health_dnsbl_nameservers: str | None = Field(
        default=None,
        description="Comma-separated host[:port] resolvers for DNSBL lookups. Unset: "
        "DNS_NAMESERVERS, else the system resolver. Spamhaus refuses public resolvers.",
    )
    # SSH (disk, restart, logs).
    health_ssh_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="SSH connect + authentication timeout."
    )
    health_ssh_command_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Upper bound on one SSH command (restart, logs)."
    )
    health_stalwart_unit: str = Field(
        default="stalwart",
        pattern=r"^[A-Za-z0-9@._-]+$",
        description="systemd unit of the mail server (v0.12+: stalwart; older: stalwart-mail).",
    )
