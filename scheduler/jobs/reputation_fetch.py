"""`reputation.fetch`: the latest figures of every configured reputation connector (none by
default), one connector at a time: `prepare` in a short transaction, the provider's client
with no transaction open, `store` in another short transaction. A connector that fails (the
provider refused the credentials, a network error, an undecryptable secret) is skipped,
logged without its secret and reported (`FetchReport.failed_workspaces`); its error is kept
on the connector and the others still run. The figures feed the reputation score on the next
`inbox.warmup` pass (domain/reputation/service.py)."""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from database.session import session_scope
from database.transactions import run_in_transaction
from domain.reputation import clients, connectors
from kit.time import utcnow
from settings.reputation import ReputationSettings

log = logging.getLogger(__name__)
NAME = "reputation.fetch"


@dataclass
class FetchReport:
    connectors: int = 0
    subjects: int = 0
    failed_workspaces: list[uuid.UUID] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def run(settings: ReputationSettings, now: datetime | None = None) -> FetchReport:
    now = now or utcnow()
    report = FetchReport()
    with session_scope() as session:
        ids = connectors.connector_ids(session)
    for connector_id in ids:
        due = None
        try:
            due = run_in_transaction(
                lambda s, c=connector_id: connectors.prepare(s, c)  # type: ignore[misc]
            )
            if due is None:
                continue
            try:
                figures, error = connectors.fetch(due, settings, now), ""
            except clients.ConnectorError as exc:
                figures, error = None, str(exc)
            stored = run_in_transaction(
                lambda s, d=due, f=figures, e=error: connectors.store(s, d, f, e, now)  # type: ignore[misc]
            )
        except Exception as exc:
            log.error(
                "reputation.fetch: connector %s skipped: %s", connector_id, type(exc).__name__
            )
            if due is not None:
                report.failed_workspaces.append(due.workspace_id)
            report.errors[str(connector_id)] = type(exc).__name__
            continue
        if error:
            report.failed_workspaces.append(due.workspace_id)
            report.errors[str(connector_id)] = error
            log.warning(
                "reputation.fetch: %s of workspace %s: %s", due.kind, due.workspace_id, error
            )
            continue
        report.connectors += 1
        report.subjects += stored
    log.info("reputation.fetch: %s", report)
    return report
