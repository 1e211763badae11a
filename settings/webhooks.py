"""Webhook delivery: the webhooks.deliver job, retries, endpoints disabled after failures, and
the grace period of a rotated signing secret."""

from pydantic import Field
from pydantic_settings import BaseSettings


class WebhookSettings(BaseSettings):
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Upper bound on one webhook delivery attempt."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, description="Attempts before a delivery is given up (dead)."
    )
    webhook_backoff_seconds: float = Field(
        default=30.0, ge=0, description="First retry delay; doubles per attempt."
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, ge=0, description="Longest delay between two attempts."
    )
    webhook_batch_size: int = Field(
        default=200, ge=1, description="Deliveries claimed per run of the delivery job."
    )
    webhook_per_endpoint_batch: int = Field(
        default=20,
        ge=1,
        description="Deliveries of one endpoint claimed per run, so a backlog on one endpoint "
        "never starves the others.",
    )
    webhook_concurrency: int = Field(
        default=50, ge=1, description="Webhook requests in flight at once."
    )
    webhook_interval_seconds: float = Field(
        default=10.0, gt=0, description="How often the webhooks.deliver job runs."
    )
    webhook_fanout_window_hours: float = Field(
        default=24.0, gt=0, description="Events younger than this are fanned out to endpoints."
    )
    webhook_disable_after_failures: int = Field(
        default=50,
        ge=1,
        description="An endpoint is disabled (and a webhook.disabled event recorded) when one of "
        "its deliveries goes dead after at least this many consecutive failed attempts.",
    )
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="Allow webhook URLs whose host is a loopback/private IP literal or "
        "localhost (tests, single-machine setups).",
    )
    webhook_secret_grace_seconds: float = Field(
        default=86400.0,
        ge=0,
        le=30 * 86400,
        description="After POST /webhooks/{id}/rotate-secret, deliveries are signed with the new "
        "and the previous secret for this long, so receivers can roll over (0: the old secret "
        "stops at once).",
    )
