"""Worker hosts: which machines run operation workers against this database, and whether the
live engine's Pulumi state is shared between them.

Each worker process upserts one row (host, pid, process start) at a bounded interval and
deletes it when it stops; rows not seen within the stale window are pruned by whoever beats
next. Both statements are set-based and idempotent: a repeated beat only moves `last_seen_at`
forward, a repeated prune deletes nothing more.

`shared_state_finding` is the one rule, for the worker's refusal (`domain.hosts.backends.check`)
and for the preflight: a file backend keeps Pulumi state on one machine, so once workers on two
hosts share the database, a host with such a backend would see an empty stack for a workspace
another host built (and order every server again), and neither host's stack lock would see the
other's."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.hosts import WorkerHost

CODE = "machine_local_pulumi_state"
REMEDY = (
    "set PENGUINMAILS_PULUMI_BACKEND_URL (or leave it unset with PENGUINMAILS_DATABASE_URL set, "
    "which keeps the state in that Postgres) to a backend every host shares: postgres://, s3://, "
    "azblob://, gs:// or Pulumi Cloud; see docs/deployment.md"
)


@dataclass(frozen=True)
class Finding:
    """Why live stacks cannot run safely; `message` says which backend to set."""

    code: str
    message: str
    hosts: list[str] = field(default_factory=list)
    local_hosts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "hosts": self.hosts,
            "local_hosts": self.local_hosts,
        }


def beat(
    session: Session,
    *,
    host: str,
    pid: int,
    started_at: datetime,
    now: datetime,
    pulumi_backend: str,
    backend_local: bool,
) -> None:
    """Record that this process is alive (insert or move `last_seen_at` forward)."""
    stmt = insert(WorkerHost).values(
        host=host,
        pid=pid,
        started_at=started_at,
        last_seen_at=now,
        pulumi_backend=pulumi_backend,
        backend_local=backend_local,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[WorkerHost.host, WorkerHost.pid, WorkerHost.started_at],
            set_={
                "last_seen_at": func.greatest(WorkerHost.last_seen_at, stmt.excluded.last_seen_at),
                "pulumi_backend": stmt.excluded.pulumi_backend,
                "backend_local": stmt.excluded.backend_local,
            },
        )
    )


def prune(session: Session, *, before: datetime) -> int:
    """Delete rows not seen since `before` (workers that died without saying so)."""
    result = session.execute(delete(WorkerHost).where(WorkerHost.last_seen_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def leave(session: Session, *, host: str, pid: int, started_at: datetime) -> None:
    """A process that stops cleanly removes its own row."""
    session.execute(
        delete(WorkerHost).where(
            WorkerHost.host == host, WorkerHost.pid == pid, WorkerHost.started_at == started_at
        )
    )


def registered(session: Session, *, since: datetime) -> list[WorkerHost]:
    return list(
        session.scalars(
            select(WorkerHost)
            .where(WorkerHost.last_seen_at >= since)
            .order_by(WorkerHost.host, WorkerHost.pid)
        )
    )


def shared_state_finding(
    session: Session,
    *,
    since: datetime,
    this_host: str | None = None,
    this_backend_local: bool | None = None,
) -> Finding | None:
    """A finding when live stacks would not share their Pulumi state, else None.

    With `this_host` and `this_backend_local` (a worker about to run a live stack): this host
    keeps its state on the machine and a worker of another host is registered. Without them
    (the preflight, from any process): workers of two or more hosts are registered and at
    least one of them keeps its state on its machine."""
    rows = registered(session, since=since)
    hosts = sorted({r.host for r in rows})
    if this_host is not None:
        others = [h for h in hosts if h != this_host]
        if not this_backend_local or not others:
            return None
        return Finding(
            CODE,
            f"live stacks refused on host {this_host}: its Pulumi state is a file backend on this "
            f"machine, and workers of other hosts ({', '.join(others)}) share this database, so "
            f"each host would see its own copy of every stack and none would see the others' "
            f"locks; {REMEDY}",
            hosts=sorted({this_host, *hosts}),
            local_hosts=[this_host],
        )
    local = sorted({r.host for r in rows if r.backend_local})
    if len(hosts) < 2 or not local:
        return None
    return Finding(
        CODE,
        f"workers of {len(hosts)} hosts ({', '.join(hosts)}) share this database, but "
        f"{', '.join(local)} keep{'s' if len(local) == 1 else ''} Pulumi state in a file backend "
        f"on the machine, so their live operations are refused; {REMEDY}",
        hosts=hosts,
        local_hosts=local,
    )
