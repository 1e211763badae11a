"""`inbox.warmup`: ramps, holds and effective caps of every inbox, one workspace per short
transaction (`domain.warmup.service.apply_workspace`). The rule is a function of the dates and
of `now`, so the job is idempotent: a second run at the same time changes nothing, and a run
after a missed one (or a restart) lands on the same ramp day. A workspace that fails is skipped,
logged and reported (`WarmupReport.failed_workspaces`); the others still run. Tests call `run`
with a given `now`."""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from database.session import session_scope
from database.transactions import run_in_transaction
from domain.warmup import service
from kit.time import utcnow
from settings import Settings

log = logging.getLogger(__name__)
NAME = "inbox.warmup"


@dataclass
class WarmupReport:
    workspaces: int = 0
    events: int = 0
    changed_limits: int = 0
    reputation_changed: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    failed_workspaces: list[uuid.UUID] = field(default_factory=list)


def run(settings: Settings, now: datetime | None = None) -> WarmupReport:
    now = now or utcnow()
    report = WarmupReport()
    with session_scope() as session:
        ids = service.workspaces_with_inboxes(session)
    for workspace_id in ids:
        try:
            applied = run_in_transaction(
                lambda session, w=workspace_id: service.apply_workspace(  # type: ignore[misc]
                    session, w, now, settings=settings
                )
            )
        except Exception:
            log.exception("inbox.warmup: workspace %s skipped", workspace_id)
            report.failed_workspaces.append(workspace_id)
            continue
        report.workspaces += 1
        report.events += len(applied.events)
        report.changed_limits += applied.changed_limits
        report.reputation_changed += applied.reputation_changed
        for e in applied.events:
            report.events_by_type[e.type] = report.events_by_type.get(e.type, 0) + 1
    log.info("inbox.warmup: %s", report)
    return report
