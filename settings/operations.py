"""The operations queue, its workers, and how the fleet endpoints place inboxes."""

from pydantic import Field
from pydantic_settings import BaseSettings


class OperationSettings(BaseSettings):
    worker_threads: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Operation worker threads per `serve`/`worker` process (0: this process "
        "runs no stack operations).",
    )
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed operation stays a worker's without a heartbeat; after "
        "that another worker takes it over.",
    )
    host_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$",
        description="This machine's name in worker heartbeats, lease owners and per-host Pulumi "
        "directories. Unset: the system host name. Give each machine its own.",
    )
    host_heartbeat_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often a worker process records that it is alive (`worker_hosts`).",
    )
    host_stale_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A worker not seen for this long no longer counts as registered; its row is "
        "pruned. Keep it at several heartbeat intervals.",
    )
    poll_interval_seconds: float = Field(
        default=0.25, gt=0, description="How often an idle worker looks for queued operations."
    )
    coalesce_seconds: float = Field(
        default=1.0,
        ge=0,
        description="A new `up` waits this long before it can run, so changes made within the "
        "window are applied by one run.",
    )
    max_attempts: int = Field(
        default=5, ge=1, description="Attempts of an operation before it is marked failed."
    )
    retry_backoff_seconds: float = Field(
        default=5.0, ge=0, description="Wait before the first retry; doubles with each attempt."
    )
    retry_backoff_max_seconds: float = Field(
        default=300.0, ge=0, description="Longest wait between retries."
    )
    inboxes_per_server: int = Field(
        default=50,
        ge=1,
        description="Inboxes placed on one server before a new server joins the fleet.",
    )
    default_region: str = Field(
        default="eu-central", description="Region of servers created for new inboxes."
    )
    server_hostname_domain: str = Field(
        default="penguinmails.io",
        description="Domain under which servers created without a mail domain are named.",
    )
    preview_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long GET .../preview waits for a worker's result before answering 202.",
    )
    sandbox_latency_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Simulated provider time added to each sandbox run (demos, failover tests).",
    )
    engine_override: str | None = Field(
        default=None,
        description="Benchmarks only: run every workspace's operations on this engine (`noop`).",
    )
    log_tail_lines: int = Field(
        default=200, ge=1, description="Lines of engine output kept with each operation."
    )
