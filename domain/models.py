"""Every ORM model, imported once so Base.metadata is complete (Alembic, tests)."""

from automation.sandbox.model import SandboxStack
from domain.dns_records.model import DnsRecord
from domain.events.model import Event
from domain.health.model import HealthCheckResult, HealthCheckState
from domain.idempotency.model import IdempotencyKey
from domain.inboxes.model import Inbox
from domain.mail_domains.model import MailDomain
from domain.operations.model import Operation
from domain.servers.model import VpsServer
from domain.tenants.model import ApiKey, Tenant
from domain.webhooks.model import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from domain.workspaces.model import Workspace

__all__ = [
    "ApiKey",
    "DnsRecord",
    "Event",
    "HealthCheckResult",
    "HealthCheckState",
    "IdempotencyKey",
    "Inbox",
    "MailDomain",
    "Operation",
    "SandboxStack",
    "Tenant",
    "VpsServer",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Workspace",
]
