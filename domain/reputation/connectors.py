"""Optional reputation connectors of a workspace (docs/reputation.md): Google Postmaster Tools
v2 and Microsoft SNDS automated data access. None exist by default; each is configured per
workspace with encrypted, write-only credentials. The `reputation.fetch` job runs, per
connector, `prepare` (a short transaction), the provider's client (no transaction open) and
`store` (a short transaction, one upsert for all the connector's subjects)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, undefer

from database.models.inboxes import Inbox
from database.models.reputation_connectors import ReputationConnector, ReputationFigure
from database.models.servers import VpsServer
from domain.reputation import clients, google_auth, postmaster
from domain.reputation.schemas import ConnectorPut, ConnectorRead, FigureRead
from domain.workspaces import service as workspaces
from kit.errors import NotFound, PenguinMailsError, ValidationFailed
from settings.reputation import ReputationSettings

GOOGLE_POSTMASTER = "google_postmaster"
MICROSOFT_SNDS = "microsoft_snds"
# The credentials each kind takes, exactly one of them (the other fields are refused for it).
CREDENTIALS = {
    GOOGLE_POSTMASTER: ("access_token", "service_account"),
    MICROSOFT_SNDS: ("key",),
}
FIELDS = ("access_token", "service_account", "key")
KINDS = tuple(CREDENTIALS)


def _check_kind(kind: str) -> None:
    if kind not in CREDENTIALS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind")


def _find(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, kind: str
) -> ReputationConnector | None:
    return session.scalars(
        select(ReputationConnector).where(
            ReputationConnector.tenant_id == tenant_id,
            ReputationConnector.workspace_id == workspace_id,
            ReputationConnector.kind == kind,
        )
    ).first()


def put(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, kind: str, body: ConnectorPut
) -> tuple[ReputationConnector, bool]:
    """Create or replace the workspace's connector of `kind`; True when it was created."""
    _check_kind(kind)
    workspaces.lock(session, tenant_id, workspace_id)
    allowed = CREDENTIALS[kind]
    for name in FIELDS:
        if name not in allowed and getattr(body, name) is not None:
            raise ValidationFailed(f"{name} is not used by {kind}", field=name)
    given = [name for name in allowed if getattr(body, name) is not None]
    if len(given) != 1:
        names = " or ".join(allowed)
        raise ValidationFailed(f"exactly one of {names} is required for {kind}", field=allowed[0])
    secret: dict[str, Any] = {given[0]: getattr(body, given[0])}
    if given[0] == "service_account":
        # Only what the grant uses is kept (encrypted with the rest).
        secret = {"service_account": google_auth.validate(body.service_account)}
    row = _find(session, tenant_id, workspace_id, kind)
    created = row is None
    if row is None:
        row = ReputationConnector(
            tenant_id=tenant_id, workspace_id=workspace_id, kind=kind, last_error=""
        )
        session.add(row)
    row.credentials_encrypted = _dump(secret)
    row.last_error = ""
    session.flush()
    session.refresh(row)
    return row, created


def get(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, kind: str
) -> ReputationConnector:
    _check_kind(kind)
    workspaces.get(session, tenant_id, workspace_id)
    row = _find(session, tenant_id, workspace_id, kind)
    if row is None:
        raise NotFound(f"no {kind} connector in workspace {workspace_id}", field="kind")
    return row


def delete_connector(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, kind: str
) -> None:
    """Remove the connector and its figures: the score stops counting them."""
    _check_kind(kind)
    workspaces.lock(session, tenant_id, workspace_id)
    row = get(session, tenant_id, workspace_id, kind)
    session.execute(
        delete(ReputationFigure).where(
            ReputationFigure.tenant_id == tenant_id,
            ReputationFigure.workspace_id == workspace_id,
            ReputationFigure.kind == kind,
        )
    )
    session.delete(row)
    session.flush()


def view(session: Session, row: ReputationConnector) -> ConnectorRead:
    figures = session.scalars(
        select(ReputationFigure)
        .where(
            ReputationFigure.tenant_id == row.tenant_id,
            ReputationFigure.workspace_id == row.workspace_id,
            ReputationFigure.kind == row.kind,
        )
        .order_by(ReputationFigure.subject)
    )
    return ConnectorRead(
        workspace_id=row.workspace_id,
        kind=row.kind,
        credentials=_stored_names(row),
        last_fetched_at=row.last_fetched_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        figures=[
            FigureRead(subject=f.subject, figures=f.figures, fetched_at=f.fetched_at)
            for f in figures
        ],
    )


def _stored_names(row: ReputationConnector) -> list[str]:
    """Which credential is stored (names only). An undecryptable secret must not fail the
    read (CONTRIBUTING: secret columns on API paths): then the names the kind accepts."""
    try:
        return sorted(json.loads(row.credentials_encrypted))
    except (PenguinMailsError, ValueError, TypeError):
        return list(CREDENTIALS[row.kind])


def _dump(secret: dict[str, Any]) -> str:
    return json.dumps(secret)


# The fetch step -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    connector_id: uuid.UUID
    tenant_id: uuid.UUID
    workspace_id: uuid.UUID
    kind: str
    # {"access_token": str} | {"service_account": {...}} | {"key": str}
    secret: dict[str, Any] = field(repr=False)
    subjects: tuple[str, ...]


def connector_ids(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(ReputationConnector.id).order_by(ReputationConnector.id)))


def prepare(session: Session, connector_id: uuid.UUID) -> Due | None:
    """The connector's credentials and the subjects it asks about: the workspace's inbox
    domains (Postmaster) or its servers' IPv4 addresses (SNDS reports IPv4)."""
    row = session.scalars(
        select(ReputationConnector)
        .options(undefer(ReputationConnector.credentials_encrypted))
        .where(ReputationConnector.id == connector_id)
    ).first()
    if row is None:
        return None
    secret = json.loads(row.credentials_encrypted)
    if row.kind == GOOGLE_POSTMASTER:
        domain = func.lower(func.split_part(Inbox.email_address, "@", 2))
        subjects = session.scalars(
            select(domain)
            .where(Inbox.tenant_id == row.tenant_id, Inbox.workspace_id == row.workspace_id)
            .distinct()
            .order_by(domain)
        )
    else:
        subjects = session.scalars(
            select(func.host(VpsServer.ip_address))
            .where(
                VpsServer.tenant_id == row.tenant_id,
                VpsServer.workspace_id == row.workspace_id,
                VpsServer.ip_address.is_not(None),
            )
            .distinct()
        )
    return Due(
        row.id, row.tenant_id, row.workspace_id, row.kind, secret, tuple(s for s in subjects if s)
    )


def fetch(due: Due, settings: ReputationSettings, now: datetime) -> dict[str, dict[str, Any]]:
    """The provider's figures per subject; raises clients.ConnectorError. No transaction."""
    timeout = settings.reputation_connector_timeout_seconds
    if due.kind == GOOGLE_POSTMASTER:
        if "service_account" in due.secret:
            token = google_auth.access_token(
                due.secret["service_account"],
                settings.google_token_url,
                postmaster.SCOPE,
                timeout,
                now,
            )
        else:
            token = str(due.secret["access_token"])
        endpoint = clients.Endpoint(settings.postmaster_base_url, timeout)
        return postmaster.fetch(endpoint, token, due.subjects, now.date())
    endpoint = clients.Endpoint(settings.snds_base_url, timeout)
    return clients.snds(endpoint, str(due.secret["key"]), due.subjects)


def store(
    session: Session,
    due: Due,
    figures: dict[str, dict[str, Any]] | None,
    error: str,
    now: datetime,
) -> int:
    """The latest figures per subject (one upsert) and the connector's last fetch/error. On
    an error the figures already stored stay (they were the provider's latest answer)."""
    row = session.get(ReputationConnector, due.connector_id)
    if row is None:  # deleted while we were fetching
        return 0
    row.last_error = error[:500]
    if figures is None:
        session.flush()
        return 0
    row.last_fetched_at = now
    if figures:
        stmt = insert(ReputationFigure).values(
            [
                {
                    "workspace_id": due.workspace_id,
                    "tenant_id": due.tenant_id,
                    "kind": due.kind,
                    "subject": subject[:255],
                    "figures": values,
                    "fetched_at": now,
                }
                for subject, values in sorted(figures.items())
            ]
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "kind", "subject"],
                set_={"figures": stmt.excluded.figures, "fetched_at": stmt.excluded.fetched_at},
            )
        )
    session.flush()
    return len(figures)


def figures_for(
    session: Session, workspace_ids: set[uuid.UUID]
) -> dict[tuple[uuid.UUID, str, str], dict[str, Any]]:
    """(workspace_id, kind, subject) -> figures, for the reputation score."""
    if not workspace_ids:
        return {}
    rows = session.execute(
        select(
            ReputationFigure.workspace_id,
            ReputationFigure.kind,
            ReputationFigure.subject,
            ReputationFigure.figures,
        ).where(ReputationFigure.workspace_id.in_(workspace_ids))
    )
    return {(w, k, s): f for w, k, s, f in rows}
