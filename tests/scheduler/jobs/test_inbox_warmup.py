"""`inbox.warmup` as the scheduler runs it: real commits, one transaction per workspace, a given
clock; a rerun at the same time changes nothing."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from database.models.events import Event
from database.models.inboxes import Inbox
from database.session import session_scope
from domain.warmup import policy as policies
from domain.warmup import service as warmup
from scheduler.jobs import inbox_warmup
from settings import get_settings
from tests.support.factories import create_inbox, create_server, create_tenant, create_workspace

T0 = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)


def test_the_job_advances_every_workspace_once_per_day(committed: Engine) -> None:
    ids = []
    with session_scope() as s:
        tenant = create_tenant(s)
        for _ in range(2):
            ws = create_workspace(s, tenant)
            inbox = create_inbox(s, ws, server=create_server(s, ws), status="ready")
            inbox.warmup_enabled = True
            warmup.start(s, inbox, policies.get(s, ws.id), T0)
            ids.append(inbox.id)

    first = inbox_warmup.run(get_settings(), now=T0 + timedelta(minutes=1))
    assert first.workspaces == 2 and first.changed_limits == 2 and not first.failed_workspaces
    again = inbox_warmup.run(get_settings(), now=T0 + timedelta(minutes=1))
    assert again.events == 0 and again.changed_limits == 0
    later = inbox_warmup.run(get_settings(), now=T0 + timedelta(days=1, minutes=1))
    assert later.events_by_type == {"inbox.warmup_advanced": 2, "inbox.limit_changed": 2}
    with session_scope() as s:
        limits = s.scalars(select(Inbox.effective_daily_limit).where(Inbox.id.in_(ids))).all()
        assert limits == [7, 7]
        assert s.scalar(select(Event.type).where(Event.type == "inbox.warmup_advanced").limit(1))
