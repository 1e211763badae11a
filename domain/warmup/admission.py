"""A new inbox's cap, set-based, in the statement that inserts it (issue 16).

An inbox create changes only two inputs of the rule (`service.apply_workspace`): the number of
inboxes on the new inbox's domain and on its server. So instead of re-running the whole rule over
the workspace (every inbox locked, loaded and scored, one UPDATE and one event per changed
neighbour: 15 statements and more, O(inboxes) ORM work per create), the create's INSERT carries

- the new inbox's `hold_reason` and `effective_daily_limit` as SQL expressions of the same
  inputs the rule reads (the workspace's policy row or the defaults, its server's critical
  checks, its domain's listing on a trusted domain list, the domain's and the server's inbox
  counts plus itself); it is not warming yet, so the ramp bound does not apply;
- `shared_caps`: one UPDATE of the neighbours whose share shrinks, with their
  `inbox.limit_changed` events inserted from its RETURNING, as CTEs of that same statement.

For a neighbour the count only grows, so its share only shrinks, and its new cap is
min(stored cap, new share): min(A, old share) with the share lowered to the new one is
min(A, new share) whatever the other bounds A are. The sweep remains what advances ramps and
releases holds over time (its `now`); the create never reads the clock for the rule, so a
sweep right after a create finds nothing of the create's to change and queues no second run
(tests/domain/warmup/test_admission.py compares both against `apply_workspace`).

The caller rolls back when the insert conflicts (an address that exists): the CTEs run in the
same statement and are undone with it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.sql import column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import CTE

from database.models.events import Event
from database.models.health import HealthCheckState
from database.models.inboxes import Inbox
from database.models.warmup import WarmupPolicy
from database.models.workspaces import Workspace
from domain.events import catalogue
from domain.health import blocklists
from domain.warmup import policy as policies
from domain.warmup.service import BLOCKLIST, DELETING, DOMAIN_BLOCKLIST, SERVER_CRITICAL

LIMIT_CHANGED = catalogue.INBOX_LIMIT_CHANGED
_EVENT_COLUMNS = [
    Event.__table__.c[name]
    for name in (
        "id",
        "tenant_id",
        "workspace_id",
        "workspace_name",
        "type",
        "subject_type",
        "subject_id",
        "message",
        "data",
    )
]
_EVENTS = table("events", *(column(c.name, c.type) for c in _EVENT_COLUMNS))


def _policy(workspace_id: uuid.UUID, name: str) -> ColumnElement[int | None]:
    """The policy's field: the workspace's row, or the default when it has none (a row's NULL
    cap means no cap, not the default)."""
    default = getattr(policies.DEFAULTS, name)
    row = select(getattr(WarmupPolicy, name)).where(WarmupPolicy.workspace_id == workspace_id)
    return case(
        (exists().where(WarmupPolicy.workspace_id == workspace_id), row.scalar_subquery()),
        else_=null() if default is None else literal(default, Integer),
    )


def _domain_of(address: ColumnElement[str]) -> ColumnElement[str]:
    """`service._domain`: what follows the last @, lowercased."""
    return func.lower(func.split_part(address, "@", -1))


def _live_in(
    workspace_id: uuid.UUID, tenant_id: uuid.UUID, inboxes: type[Inbox] = Inbox
) -> ColumnElement[bool]:
    """The inboxes `apply_workspace` counts and caps."""
    return and_(
        inboxes.workspace_id == workspace_id,
        inboxes.tenant_id == tenant_id,
        or_(inboxes.status.is_(None), inboxes.status != DELETING),
    )


def _share(cap: ColumnElement[int | None], count: ColumnElement[int]) -> ColumnElement[int]:
    # NULL without a cap: LEAST ignores it, as `effective_limit` leaves the bound out.
    return case((cap.is_(None), null()), else_=cap // count)


def _counts(
    workspace_id: uuid.UUID, tenant_id: uuid.UUID, domain: str, server_id: uuid.UUID
) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """The domain's and the server's inbox counts once the new inbox is in (the statement's
    snapshot does not see it, so + 1). An alias: inside the UPDATE of `shared_caps` a plain
    `inboxes` would be correlated to the row being updated."""
    counted = aliased(Inbox, name="counted")
    live = _live_in(workspace_id, tenant_id, counted)
    on_domain = select(func.count()).where(live, _domain_of(counted.email_address) == domain)
    on_server = select(func.count()).where(live, counted.vps_id == server_id)
    return on_domain.scalar_subquery() + 1, on_server.scalar_subquery() + 1


def new_inbox_caps(
    workspace_id: uuid.UUID, tenant_id: uuid.UUID, domain: str, server_id: uuid.UUID
) -> dict[str, ColumnElement[object]]:
    """`hold_reason` and `effective_daily_limit` for the new inbox's INSERT: `_trouble` and
    `effective_limit` of `service` for an inbox that is not warming, in SQL."""
    critical = select(HealthCheckState.check).where(
        HealthCheckState.vps_id == server_id, HealthCheckState.status == "critical"
    )
    hold = case(
        (exists(critical.where(HealthCheckState.check == "dnsbl")), literal(BLOCKLIST)),
        (exists(critical), literal(SERVER_CRITICAL)),
        (blocklists.domain_listed(domain), literal(DOMAIN_BLOCKLIST)),
        else_=null(),
    )
    on_domain, on_server = _counts(workspace_id, tenant_id, domain, server_id)
    limit = func.least(
        policies.DEFAULT_DAILY_SEND_LIMIT,  # the column's default; the create does not set it
        case((hold.is_not(None), _policy(workspace_id, "floor_daily")), else_=null()),
        _share(_policy(workspace_id, "domain_daily_cap"), on_domain),
        _share(_policy(workspace_id, "server_daily_cap"), on_server),
    )
    return {"hold_reason": hold, "effective_daily_limit": limit}


def shared_caps(
    workspace_id: uuid.UUID,
    tenant_id: uuid.UUID,
    domain: str,
    server_id: uuid.UUID,
    address: str,
) -> CTE:
    """The neighbours' caps lowered to their new share, and their `inbox.limit_changed` events:
    a CTE to add to the INSERT (`Insert.add_cte`). Inboxes whose cap was never computed are the
    sweep's. Not when the address exists already (the insert will do nothing)."""
    on_domain, on_server = _counts(workspace_id, tenant_id, domain, server_id)
    domain_share = _share(_policy(workspace_id, "domain_daily_cap"), on_domain)
    server_share = _share(_policy(workspace_id, "server_daily_cap"), on_server)
    same_domain = _domain_of(Inbox.email_address) == domain
    same_server = Inbox.vps_id == server_id
    taken = aliased(Inbox, name="taken")
    mine_d = case((same_domain, domain_share), else_=null())
    mine_s = case((same_server, server_share), else_=null())
    before = (
        select(
            Inbox.id,
            Inbox.effective_daily_limit.label("old"),
            func.least(Inbox.effective_daily_limit, mine_d, mine_s).label("new"),
            # `effective_limit` names the first of equal bounds: domain before server.
            case(
                (and_(mine_d.is_not(None), or_(mine_s.is_(None), mine_d <= mine_s)), "domain"),
                else_="server",
            ).label("limited_by"),
        )
        .where(
            _live_in(workspace_id, tenant_id),
            Inbox.effective_daily_limit.is_not(None),
            or_(same_domain, same_server),
            ~exists().where(func.lower(taken.email_address) == address.lower()),
        )
        .subquery("before")
    )
    changed = (
        update(Inbox)
        .where(Inbox.id == before.c.id, before.c.new < before.c.old)
        .values(effective_daily_limit=before.c.new)
        .returning(
            Inbox.id,
            Inbox.email_address,
            Inbox.hold_reason,
            before.c.old,
            before.c.new,
            before.c.limited_by,
        )
        .cte("shared_caps")
    )
    name = select(Workspace.name).where(Workspace.id == workspace_id).scalar_subquery()
    message = func.concat(
        "daily cap of ", changed.c.email_address, " is now ", changed.c.new,
        " (was ", changed.c.old, ")",
    )  # fmt: skip
    data = func.jsonb_build_object(
        "from", changed.c.old,
        "to", changed.c.new,
        "limited_by", changed.c.limited_by,
        "hold", changed.c.hold_reason,
    )  # fmt: skip
    rows = select(
        func.gen_random_uuid(),
        literal(tenant_id),
        literal(workspace_id),
        name,
        literal(LIMIT_CHANGED.name, String),
        literal("inbox", String),
        changed.c.id,
        message,
        cast(data, JSONB),
    )
    # The bare table: a nested INSERT of the mapped `Event` would take over the statement's
    # Python-side defaults (SQLAlchemy then sends NULL for the inbox's `quota_mb`...).
    columns = [c.name for c in _EVENT_COLUMNS]
    return _EVENTS.insert().from_select(columns, rows).cte("limit_changed_events")
