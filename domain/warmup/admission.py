"""A new inbox admitted with its cap: one INSERT that also applies the warmup rule's part a create
changes (issue 16).

An inbox create changes only two inputs of the rule (`service.apply_workspace`): the number of
inboxes on the new inbox's domain and on its server. So instead of re-running the whole rule over
the workspace (every inbox locked, loaded and scored, one UPDATE and one event per changed
neighbour: 15 statements and more, O(inboxes) ORM work per create), the INSERT carries

- the new inbox's `hold_reason` and `effective_daily_limit`, from the inputs the rule reads for
  it (the workspace's policy row or the defaults, its server's critical checks, its domain's
  listing on a domain list that passes its RFC 5782 test entries, the domain's and the server's
  inbox counts with itself): `_trouble` and `effective_limit` for an inbox not yet warming;
- its neighbours' caps lowered to their new share, with their `inbox.limit_changed` events, in
  CTEs of the same statement. A count only grows here, so a share only shrinks, and a
  neighbour's new cap is min(stored cap, new share): min(A, old share) with the share lowered is
  min(A, new share) whatever the other bounds A are;
- the workspace's queued `up` inserted or joined (`operations.up_ctes`), so the run that makes
  the inbox is queued in the same round trip (a statement fewer per create, and no Operation
  loaded: the create answers with its id only).

The sweep remains what advances ramps and releases holds (with its `now`); the create reads no
clock for the rule, so a sweep right after a create finds nothing of the create's to change and
queues no second run (tests/domain/warmup/test_admission.py checks each case against
`apply_workspace`). The caller holds the workspace lock, the lock order's first, and rolls back
when the address exists (the neighbours and the queue are not touched then either).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, Uuid, bindparam, column, select, text
from sqlalchemy.orm import Session

from database.base import EncryptedText
from database.models.inboxes import Inbox
from domain.events import catalogue
from domain.operations import service as operations
from domain.warmup import policy as policies
from probes import dnsbl

_MUST, _MUST_NOT = dnsbl.TEST_ENTRIES[dnsbl.DOMAIN]

# A share is at least 1, as in `effective_limit` (the CASE: `greatest` ignores a NULL, and
# no cap is no bound). `trouble` is read once, for the hold and for the floor. `lowered`: a
# neighbour's cap that was never computed is left to the sweep; `limited_by` is the first of
# equal bounds, as in `effective_limit` (the domain's before the server's).
_SQL = """
WITH policy AS (
    SELECT floor_daily, domain_daily_cap, server_daily_cap FROM (
        SELECT 0 AS pick, floor_daily, domain_daily_cap, server_daily_cap
        FROM warmup_policies WHERE workspace_id = :in_workspace
        UNION ALL
        SELECT 1, :floor, CAST(:domain_cap AS integer), CAST(:server_cap AS integer)
    ) p ORDER BY pick LIMIT 1
), live AS (
    SELECT id, vps_id, effective_daily_limit,
           lower(split_part(email_address, '@', -1)) = :domain AS on_domain
    FROM inboxes
    WHERE workspace_id = :in_workspace AND tenant_id = :of_tenant
      AND (status IS NULL OR status <> 'deleting')
), shares AS (
    SELECT min(p.floor_daily) AS floor_daily,
           CASE WHEN min(p.domain_daily_cap) IS NOT NULL THEN greatest(1,
               min(p.domain_daily_cap) / (1 + count(l.id) FILTER (WHERE l.on_domain))) END
               AS on_domain,
           CASE WHEN min(p.server_daily_cap) IS NOT NULL THEN greatest(1,
               min(p.server_daily_cap) / (1 + count(l.id) FILTER (WHERE l.vps_id = :server_id)))
               END AS on_server
    FROM policy p LEFT JOIN live l ON true
), trouble AS MATERIALIZED (
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM health_check_states WHERE vps_id = :server_id
                     AND status = 'critical' AND "check" = 'dnsbl') THEN 'blocklist'
        WHEN EXISTS (SELECT 1 FROM health_check_states WHERE vps_id = :server_id
                     AND status = 'critical') THEN 'server_critical'
        WHEN EXISTS (
            SELECT 1 FROM dnsbl_lookups d
            WHERE d.subject = :domain AND d.state = 'listed' AND d.checked_at IS NOT NULL
              AND EXISTS (SELECT 1 FROM dnsbl_lookups t WHERE t.zone = d.zone
                          AND t.subject = :must AND t.state = 'listed'
                          AND t.checked_at IS NOT NULL)
              AND EXISTS (SELECT 1 FROM dnsbl_lookups t WHERE t.zone = d.zone
                          AND t.subject = :must_not AND t.state = 'not_listed'
                          AND t.checked_at IS NOT NULL)
        ) THEN 'domain_blocklist'
    END AS hold_reason
), lowered AS (
    UPDATE inboxes i SET effective_daily_limit = n.new, updated_at = now()
    FROM (
        SELECT l.id, l.effective_daily_limit AS old,
               least(l.effective_daily_limit, mine.d, mine.s) AS new,
               CASE WHEN mine.d <= coalesce(mine.s, mine.d) THEN 'domain' ELSE 'server' END
                   AS limited_by
        FROM live l CROSS JOIN shares s
        CROSS JOIN LATERAL (
            SELECT CASE WHEN l.on_domain THEN s.on_domain END AS d,
                   CASE WHEN l.vps_id = :server_id THEN s.on_server END AS s
        ) mine
        WHERE l.effective_daily_limit IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM inboxes WHERE lower(email_address) = lower(:address))
    ) n
    WHERE i.id = n.id AND n.new < n.old
    RETURNING i.id, i.email_address, i.hold_reason, n.old, n.new, n.limited_by
), limit_events AS (
    INSERT INTO events (tenant_id, workspace_id, workspace_name, type, subject_type,
                        subject_id, message, data)
    SELECT :of_tenant, :in_workspace,
           (SELECT name FROM workspaces WHERE id = :in_workspace), :event_type, 'inbox', id,
           concat('daily cap of ', email_address, ' is now ', new, ' (was ', old, ')'),
           jsonb_build_object('from', old, 'to', new, 'limited_by', limited_by,
                              'hold', hold_reason)
    FROM lowered
), {up}
INSERT INTO inboxes (id, tenant_id, workspace_id, email_address, display_name, vps_id,
                     password_encrypted, status, hold_reason, effective_daily_limit)
SELECT :new_id, :of_tenant, :in_workspace, :address, :shown_name, :server_id, :password,
       'pending_setup', t.hold_reason,
       least(:inbox_limit, CASE WHEN t.hold_reason IS NOT NULL THEN s.floor_daily END,
             s.on_domain, s.on_server)
FROM trouble t CROSS JOIN shares s
ON CONFLICT DO NOTHING
RETURNING {columns},
    (SELECT id FROM up_inserted UNION ALL SELECT id FROM up_joined LIMIT 1) AS up_id
"""
_FREE = "NOT EXISTS (SELECT 1 FROM inboxes WHERE lower(email_address) = lower(:address))"

# The password is not read back: it would be decrypted for nothing.
_RETURNED = [c for c in Inbox.__table__.c if c.key != "password_encrypted"]
# Whitespace collapsed (so no `--` comments in it): psycopg caches its conversion of a query of
# up to 4,096 characters and converts a longer one again on every execution.
_UP_ID = column("up_id", Uuid())
_STATEMENT = select(Inbox, _UP_ID).from_statement(
    text(
        " ".join(
            _SQL.format(
                columns=", ".join(c.name for c in _RETURNED), up=operations.up_ctes(_FREE)
            ).split()
        )
    )
    .bindparams(
        bindparam("password", type_=EncryptedText()),
        bindparam("domain", type_=String()),
        bindparam("must", _MUST),
        bindparam("must_not", _MUST_NOT),
        bindparam("floor", policies.DEFAULTS.floor_daily),
        bindparam("domain_cap", policies.DEFAULTS.domain_daily_cap),
        bindparam("server_cap", policies.DEFAULTS.server_daily_cap),
        bindparam("inbox_limit", policies.DEFAULT_DAILY_SEND_LIMIT),  # the column's default
        bindparam("event_type", catalogue.INBOX_LIMIT_CHANGED.name),
    )
    .columns(*_RETURNED, _UP_ID)
)


def admit(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    workspace_id: uuid.UUID,
    address: str,
    domain: str,
    display_name: str | None,
    server_id: uuid.UUID,
    password: str,
    up: dict[str, Any],
) -> tuple[Inbox, uuid.UUID | None] | None:
    """The new `pending_setup` inbox with its cap and the id of the workspace's queued `up`
    that will make it (inserted or joined, `up` the parameters of `operations.up_params`), or
    None when the address exists (the unique index on lower(email_address) decides; nothing
    is queued or joined then). The id is None when a worker claimed the queued `up` between
    this statement's snapshot and its update: the caller queues another with
    `operations.enqueue`. `domain` is the address's, normalised."""
    row = session.execute(
        _STATEMENT,
        {
            "new_id": uuid.uuid4(),
            "of_tenant": tenant_id,
            "in_workspace": workspace_id,
            "address": address,
            "domain": domain,
            "shown_name": display_name,
            "server_id": server_id,
            "password": password,
            **up,
        },
    ).first()
    return None if row is None else (row[0], row[1])
