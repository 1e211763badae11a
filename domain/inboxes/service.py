"""Inboxes: a mailbox on one of the workspace's servers. Every change writes the desired state
and enqueues the workspace's `up` in the same transaction; the worker makes it real."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.operations import Operation
from database.models.servers import VpsServer
from database.models.workspaces import Workspace
from database.pagination import Parent, paginate
from database.scoping import get_owned
from domain.inboxes.schemas import Credentials, Endpoint, InboxCreate, InboxUpdate
from domain.inboxes.states import INBOX, InboxStatus
from domain.mail_domains import service as mail_domains
from domain.operations import service as operations
from domain.servers import service as servers
from domain.warmup import admission
from domain.warmup import policy as warmup_policy
from domain.warmup import service as warmup
from domain.workspaces import service as workspaces
from kit.errors import Conflict
from kit.secrets import new_password
from kit.time import utcnow
from settings import Settings
from settings.operations import OperationSettings

SMTP_PORT, IMAP_PORT = 465, 993


@dataclass(frozen=True)
class Accepted:
    inbox: Inbox
    operation_id: uuid.UUID  # the `up` (new or joined) that applies the change
    credentials: Credentials | None = None


def credentials_for(inbox: Inbox, hostname: str, password: str) -> Credentials:
    return Credentials(
        username=inbox.email_address,
        password=password,
        smtp=Endpoint(host=hostname, port=SMTP_PORT, security="tls"),
        imap=Endpoint(host=hostname, port=IMAP_PORT, security="tls"),
    )


def _address_taken(session: Session, address: str) -> bool:
    return bool(
        session.scalar(select(exists().where(func.lower(Inbox.email_address) == address.lower())))
    )


def create(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    data: InboxCreate,
    *,
    settings: Settings,
) -> Accepted:
    """Three statements when the workspace has the domain and a server with room (the common
    case): the workspace lock; the domain's owner, the domain and the server with room in one
    read (servers.placement); the insert, whose ON CONFLICT on the unique index of
    lower(email_address) is the duplicate check, which sets the inbox's cap and lowers its
    neighbours' (domain.warmup.admission) and which queues or joins the workspace's `up`
    (operations.up_ctes). The placed server's `inbox_count` is kept by a trigger in
    this transaction."""
    workspace = workspaces.lock(session, tenant_id, workspace_id)
    address = str(data.email_address)
    local, _, domain = address.rpartition("@")
    domain = mail_domains.normalize_domain(domain, field="email_address")
    address = f"{local}@{domain}"
    # Ownership first: another tenant's domain is one answer for every address on it, so a
    # caller cannot probe which mailboxes exist there.
    place = servers.placement(
        session,
        workspace,
        tenant_id,
        domain,
        provider=data.vps_provider,
        size=data.vps_size,
        region=data.vps_region,
        settings=settings,
    )
    mail_domains.check_owner(place.owner, tenant_id, domain)
    server_id, hostname = place.server_id, place.hostname
    if not place.has_domain or server_id is None:
        # The slow path makes a DKIM key or a server: refuse a taken address before that work.
        # Deliberately not scoped to the tenant: an address is one mailbox, whoever created it.
        if _address_taken(session, address):
            raise Conflict(f"an inbox for {address} already exists", field="email_address")
        if not place.has_domain:
            mail_domains.ensure_domain(session, workspace, domain, settings=settings)
        if server_id is None:
            server = servers.new_server_for_inbox(
                session,
                workspace,
                provider=data.vps_provider,
                size=data.vps_size,
                region=data.vps_region,
                domain=domain,
                settings=settings,
            )
            server_id, hostname = server.id, server.hostname
    assert hostname is not None
    password = new_password()
    # Two workspaces of the tenant racing for one address: the unique index decides, and the
    # loser's transaction (its count, its domain, its neighbours' caps) is rolled back by the
    # Conflict. The new inbox's cap and its neighbours' shares go out with the run that creates
    # it, computed in this same statement (domain.warmup.admission), so the warmup sweep has
    # nothing to queue for a new inbox.
    reason = f"create inbox {address}"
    admitted = admission.admit(
        session,
        tenant_id=tenant_id,
        workspace_id=workspace.id,
        address=address,
        domain=domain,
        display_name=data.display_name,
        server_id=server_id,
        password=password,
        up=operations.up_params(workspace, reason, settings=settings),
    )
    if admitted is None:
        raise Conflict(f"an inbox for {address} already exists", field="email_address")
    inbox, operation_id = admitted
    if operation_id is None:  # a worker claimed the queued up meanwhile: queue another
        operation_id = operations.enqueue(
            session, workspace, "up", reason=reason, settings=settings, workspace_locked=True
        ).id
    return Accepted(inbox, operation_id, credentials_for(inbox, hostname, password))


def get(session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> Inbox:
    return get_owned(session, Inbox, tenant_id, inbox_id, noun="inbox", field="inbox_id")


def _lock(session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> Inbox:
    """The inbox locked in the lock order: its workspace first, then the inbox (changing the
    inbox first and then locking the workspace deadlocks with a worker finishing a run)."""
    inbox = get(session, tenant_id, inbox_id)
    workspaces.lock(session, tenant_id, inbox.workspace_id)
    session.refresh(inbox, with_for_update={"key_share": True})
    return inbox


def list_page(
    session: Session,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    status: str | None = None,
) -> tuple[Sequence[Inbox], int]:
    """The workspace's inboxes; the workspace checked in the same statement (NotFound as
    `workspaces.get` says it)."""
    where = [Inbox.tenant_id == tenant_id, Inbox.workspace_id == workspace_id]
    if status:
        where.append(Inbox.status == status)
    return paginate(
        session,
        Inbox,
        where,
        order_by=(Inbox.created_at, Inbox.id),
        limit=limit,
        offset=offset,
        parent=Parent(Workspace, tenant_id, workspace_id, noun="workspace", field="workspace_id"),
    )


def update(
    session: Session,
    tenant_id: uuid.UUID,
    inbox_id: uuid.UUID,
    data: InboxUpdate,
    *,
    settings: OperationSettings,
) -> tuple[Inbox, Operation | None]:
    inbox = _lock(session, tenant_id, inbox_id)
    if inbox.status == "deleting":
        raise Conflict("inbox is being deleted", field="status")
    changes = data.model_dump(exclude_unset=True)
    was_enabled = bool(inbox.warmup_enabled)
    for field in (
        "daily_send_limit",
        "warmup_enabled",
        "warmup_start_daily",
        "warmup_daily_increase",
    ):
        if changes.get(field) is not None:
            setattr(inbox, field, changes[field])
    now = utcnow()
    if inbox.warmup_enabled and not was_enabled:
        warmup.start(session, inbox, warmup_policy.get(session, inbox.workspace_id), now)
    elif was_enabled and not inbox.warmup_enabled:
        warmup.stop(inbox)
    op = None
    if "display_name" in changes and changes["display_name"] != inbox.display_name:
        # The display name lives in the mail server's account: the stack must apply it.
        inbox.display_name = changes["display_name"]
        workspace = workspaces.lock(session, tenant_id, inbox.workspace_id)  # held already
        op = operations.enqueue(
            session, workspace, "up", reason=f"rename {inbox.email_address}", settings=settings
        )
    session.flush()
    # The cap follows at once (an enabled ramp drops it to day 1's step), queued like any change.
    applied = warmup.apply_workspace(session, inbox.workspace_id, now, settings=settings)
    if op is None and applied.operation_id is not None:
        op = session.get(Operation, applied.operation_id)
    return inbox, op


def rotate_credentials(
    session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID, *, settings: OperationSettings
) -> Accepted:
    inbox = _lock(session, tenant_id, inbox_id)
    if inbox.status == "deleting" or inbox.vps_id is None:
        raise Conflict("inbox is being deleted", field="status")
    workspace = workspaces.lock(session, tenant_id, inbox.workspace_id)  # held already
    server = session.get(VpsServer, inbox.vps_id)
    assert server is not None
    password = new_password()
    inbox.password_encrypted = password
    op = operations.enqueue(
        session,
        workspace,
        "up",
        reason=f"rotate credentials of {inbox.email_address}",
        settings=settings,
    )
    session.flush()
    return Accepted(inbox, op.id, credentials_for(inbox, server.hostname, password))


def mark_for_deletion(
    session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID, *, settings: OperationSettings
) -> Accepted:
    inbox = _lock(session, tenant_id, inbox_id)
    workspace = workspaces.lock(session, tenant_id, inbox.workspace_id)  # held already
    INBOX.move(inbox, InboxStatus.DELETING)
    op = operations.enqueue(
        session, workspace, "up", reason=f"delete inbox {inbox.email_address}", settings=settings
    )
    session.flush()
    return Accepted(inbox, op.id)
