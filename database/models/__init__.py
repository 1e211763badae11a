"""Every table, one module per aggregate. Importing any of them imports this package, so
`Base.metadata` is always complete (Alembic, tests, any process): a foreign key never points at
a table that was not loaded. The domain layer and the engines import their models from here;
nothing here imports upward."""

from database.models.dns_connections import DnsConnection
from database.models.dns_records import DnsRecord
from database.models.events import Event
from database.models.health import DnsblLookup, HealthCheckResult, HealthCheckState
from database.models.hosts import WorkerHost
from database.models.idempotency import IdempotencyKey
from database.models.inboxes import Inbox
from database.models.live_stacks import LiveStack
from database.models.mail_domains import DomainClaim, DomainOwner, MailDomain
from database.models.operations import Operation
from database.models.reputation_connectors import ReputationConnector, ReputationFigure
from database.models.sandbox import SandboxStack
from database.models.servers import VpsServer
from database.models.tenants import ApiKey, Tenant
from database.models.warmup import ReputationSnapshot, WarmupPolicy
from database.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from database.models.workspaces import Workspace

__all__ = [
    "ApiKey",
    "DnsConnection",
    "DnsRecord",
    "DnsblLookup",
    "DomainClaim",
    "DomainOwner",
    "Event",
    "HealthCheckResult",
    "HealthCheckState",
    "IdempotencyKey",
    "Inbox",
    "LiveStack",
    "MailDomain",
    "Operation",
    "ReputationConnector",
    "ReputationFigure",
    "ReputationSnapshot",
    "SandboxStack",
    "Tenant",
    "VpsServer",
    "WarmupPolicy",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHost",
    "Workspace",
]
