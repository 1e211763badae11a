"""Skipping an unchanged `up` (automation/unchanged.py), on both engines, state in the test
Postgres: the same config and program since the last successful `up` is skipped without
evaluating the program; a changed inbox, a failed last run, a refresh, a changed program or a
DNS record left to retry makes it run."""

import uuid
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from automation import queue, unchanged
from automation.engine import ResourceChange
from automation.errors import EngineError, PulumiNotInstalled
from automation.live import LiveEngine
from automation.live_state import PostgresLiveRuns
from automation.sandbox.engine import SandboxEngine
from automation.sandbox.state import PostgresStore, StackState
from automation.unchanged import LastUp
from database.models.operations import Operation
from database.session import session_scope
from domain.operations import service as operations
from domain.operations.schemas import OperationRead
from settings import get_settings
from stacks.config import DnsConnectionSpec, DnsRecordSpec, FleetConfig
from tests.support.factories import (
    create_inbox,
    create_mail_domain,
    create_server,
    create_tenant,
    create_workspace,
)
from tests.support.knot import Knot
from tests.support.stack_fleet import domain, fleet_config, mailbox, server

COMMAND = "command:remote:Command"


class Watched:
    """The real Postgres store, with the names of the calls it answered."""

    def __init__(self) -> None:
        self.inner = PostgresStore()
        self.calls: list[str] = []

    def load(self, stack_name: str) -> StackState:
        self.calls.append("load")
        return self.inner.load(stack_name)

    def save(self, stack_name: str, state: StackState) -> None:
        self.calls.append("save")
        self.inner.save(stack_name, state)

    def drop(self, stack_name: str, version: int) -> None:
        self.calls.append("drop")
        self.inner.drop(stack_name, version)

    def unchanged(self, stack_name: str, fingerprint: str) -> LastUp | None:
        self.calls.append("unchanged")
        return self.inner.unchanged(stack_name, fingerprint)

    def forget(self, stack_name: str) -> None:
        self.calls.append("forget")
        self.inner.forget(stack_name)

    def locked(self, stack_name: str) -> AbstractContextManager[None]:
        self.calls.append("locked")
        return self.inner.locked(stack_name)


def two_servers() -> FleetConfig:
    return fleet_config(
        servers=(server("mx1"), server("mx2")),
        mailboxes=(mailbox("a@example.com", "mx1"), mailbox("b@example.com", "mx2")),
    )


def engine(store: Any = None, **kw: Any) -> SandboxEngine:
    return SandboxEngine(store or PostgresStore(), digest_key=b"test-key", **kw)


def _version(committed: Engine, stack: str) -> int:
    with committed.connect() as conn:
        return int(
            conn.execute(
                text("SELECT version FROM sandbox_stacks WHERE stack_name = :s"), {"s": stack}
            ).scalar_one()
        )


def _evaluated(result: Any) -> bool:
    return not result.summary.get("skipped") and "resources evaluated" in result.log[-1]


def test_an_unchanged_up_is_skipped_without_evaluating_the_program(committed: Engine) -> None:
    first = engine().up("ws-u1", two_servers())
    version = _version(committed, "ws-u1")
    watched = Watched()
    lines: list[str] = []
    again = engine(watched).up("ws-u1", two_servers(), on_event=lines.append)
    # Only the fingerprint was looked up: no state loaded, no program run, nothing saved.
    assert watched.calls == ["locked", "unchanged"]
    assert _version(committed, "ws-u1") == version
    assert again.changes == []
    assert again.summary == {
        "create": 0, "update": 0, "delete": 0, "replace": 0,
        "same": len(first.changes), "skipped": True,
    }  # fmt: skip
    assert again.outputs == first.outputs
    assert lines == again.log and len(lines) == 1 and "up: skipped: " in lines[0]


def test_a_changed_inbox_runs_and_then_is_skipped_again(committed: Engine) -> None:
    engine().up("ws-u2", two_servers())
    config = two_servers()
    resized = replace(
        config,
        mailboxes=(
            replace(config.mailboxes[0], quota_mb=config.mailboxes[0].quota_mb + 512),
            config.mailboxes[1],
        ),
    )
    result = engine().up("ws-u2", resized)
    assert result.changes == [ResourceChange("update", COMMAND, "account-a@example.com")]
    assert _evaluated(result)
    assert engine().up("ws-u2", resized).summary["skipped"] is True
    # Back to the first config: a change too.
    back = engine().up("ws-u2", config)
    assert back.changes == [ResourceChange("update", COMMAND, "account-a@example.com")]


def test_a_failed_last_run_makes_the_next_up_run(committed: Engine) -> None:
    # Two addresses in the pool: a third server cannot be given one, and that run fails.
    small = {"ipv4_ranges": ["192.0.2.0/30"], "ipv6_range": "2001:db8::/48"}
    config = two_servers()
    engine(**small).up("ws-u3", config)
    grown = replace(config, servers=(*config.servers, server("mx3")))
    with pytest.raises(EngineError):
        engine(**small).up("ws-u3", grown)
    rerun = engine(**small).up("ws-u3", config)
    assert _evaluated(rerun) and rerun.changes == []
    assert engine(**small).up("ws-u3", config).summary.get("skipped") is True


def test_refresh_and_destroy_make_the_next_up_run(committed: Engine) -> None:
    engine().up("ws-u4", two_servers())
    engine().refresh("ws-u4", two_servers())
    assert _evaluated(engine().up("ws-u4", two_servers()))
    engine().destroy("ws-u4", two_servers())
    recreated = engine().up("ws-u4", two_servers())
    assert _evaluated(recreated) and {c.op for c in recreated.changes} == {"create"}


def test_a_preview_is_never_skipped(committed: Engine) -> None:
    engine().up("ws-u5", two_servers())
    preview = engine().preview("ws-u5", two_servers())
    assert "preview: " in preview.log[-1] and "resources evaluated" in preview.log[-1]
    assert engine().up("ws-u5", two_servers()).summary.get("skipped") is True


def test_a_changed_program_runs(committed: Engine) -> None:
    engine(program_version="one").up("ws-u6", two_servers())
    assert engine(program_version="one").up("ws-u6", two_servers()).summary.get("skipped")
    assert _evaluated(engine(program_version="two").up("ws-u6", two_servers()))
    assert engine(program_version="two").up("ws-u6", two_servers()).summary.get("skipped")


def test_the_program_version_follows_the_source_and_package_versions(tmp_path: Path) -> None:
    package = tmp_path / "prog"
    package.mkdir()
    (package / "a.py").write_text("X = 1\n")
    before = unchanged.digest_of(tmp_path, ("prog",), ("pulumi",))
    (package / "a.py").write_text("X = 2\n")
    assert unchanged.digest_of(tmp_path, ("prog",), ("pulumi",)) != before
    assert unchanged.digest_of(tmp_path, ("prog",), ()) != unchanged.digest_of(
        tmp_path, ("prog",), ("pulumi",)
    )
    # The real one reads the real tree, the same on every call.
    assert unchanged.program_version() == unchanged.program_version()


def test_a_dns_record_left_to_retry_makes_the_next_up_run(knot: Knot, committed: Engine) -> None:
    zone = f"retry{uuid.uuid4().hex[:6]}.test"  # not served yet: publishing fails
    conn = DnsConnectionSpec(
        id="c0ffee00-0000-4000-8000-0000000000aa",
        kind="rfc2136",
        settings={"server": knot.server, "tsig_key_name": knot.key_name},
        credentials={"tsig_secret": knot.secret},
    )
    config = fleet_config(
        servers=(server("mx1"),),
        domains=(domain(zone),),
        mailboxes=(mailbox(f"a@{zone}"),),
        dns_connections=(conn,),
        dns_records=(DnsRecordSpec(conn.id, zone, "a", "A", "mail", "192.0.2.10", ttl=60),),
    )
    first = engine().up("ws-u7", config)
    assert {o["status"] for o in first.outputs["dns"].values()} == {"error"}
    knot.add_zone(zone)
    retried = engine().up("ws-u7", config)
    assert _evaluated(retried)
    assert {o["status"] for o in retried.outputs["dns"].values()} == {"published"}
    assert engine().up("ws-u7", config).summary.get("skipped") is True


def test_a_skipped_up_is_visible_on_the_operation_and_feeds_the_pipeline(
    committed: Engine,
) -> None:
    with session_scope() as s:
        ws = create_workspace(s, create_tenant(s))
        create_mail_domain(s, ws, "example.com")
        srv = create_server(s, ws, ip_address=None, status="provisioning")
        create_inbox(s, ws, email_address="sales@example.com", server=srv)
        workspace_id = ws.id
    sandbox = engine()
    results = []
    for _ in range(2):
        with session_scope() as s:
            ws = s.get_one(type(ws), workspace_id)
            operations.enqueue(s, ws, "up", reason="test", settings=get_settings())
            s.execute(text("UPDATE operations SET run_after = now() - interval '1 second'"))
        assert queue.run_one("w1", engines=lambda _ws: sandbox)
        with session_scope() as s:
            op = s.scalars(
                select(Operation)
                .where(Operation.workspace_id == workspace_id)
                .order_by(Operation.created_at.desc())
            ).first()
            assert op is not None and op.status == "succeeded", op and op.error
            results.append(OperationRead.of(op))
    ran, skipped = results
    assert "skipped" not in (ran.summary or {})["changes"]
    assert (skipped.summary or {})["changes"]["skipped"] is True
    assert skipped.resource_changes == []
    assert any("up: skipped: " in line for line in skipped.log_tail)
    # The pipeline ran on the stored outputs: the same steps report, nothing is lost.
    assert {s["step"] for s in (skipped.summary or {})["steps"]} == {
        s["step"] for s in (ran.summary or {})["steps"]
    }


def live(tmp_path: Path, **kw: Any) -> LiveEngine:
    # No Pulumi CLI on this machine: a run that reaches it fails with PulumiNotInstalled.
    return LiveEngine(
        command="pulumi-is-not-installed-here",
        backend_url=(tmp_path / "state").as_uri(),
        passphrase="test-passphrase",
        pulumi_home=tmp_path / "home",
        work_root=tmp_path / "work",
        plugins={},
        runs=PostgresLiveRuns(),
        **kw,
    )


def test_live_skips_an_unchanged_up_without_the_cli(tmp_path: Path, committed: Engine) -> None:
    engine_ = live(tmp_path, program_version="one")
    config = two_servers()
    outputs = {"servers": {"mx1": {"ipv4": "192.0.2.1"}}, "mailboxes": {}, "dns": {}}
    # What a successful `up` records (LiveEngine.up after the CLI's run).
    engine_.runs.remember("ws-l1", engine_.fingerprint(config), outputs, 7)  # type: ignore[union-attr]
    skipped = engine_.up("ws-l1", config)
    assert skipped.summary["skipped"] is True and skipped.summary["same"] == 7
    assert skipped.outputs == outputs and skipped.changes == []
    with pytest.raises(PulumiNotInstalled):  # a preview is never skipped
        engine_.preview("ws-l1", config)
    # Another backend, program or config is another fingerprint: the run starts (and fails
    # here), and the failed run leaves nothing for the next `up` to skip on.
    assert live(tmp_path, program_version="two").fingerprint(config) != engine_.fingerprint(config)
    other = LiveEngine(
        command="pulumi-is-not-installed-here",
        backend_url=(tmp_path / "elsewhere").as_uri(),
        passphrase="test-passphrase",
        plugins={},
        program_version="one",
    )
    assert other.fingerprint(config) != engine_.fingerprint(config)
    changed = replace(config, mailboxes=config.mailboxes[:1])
    with pytest.raises(PulumiNotInstalled):
        engine_.up("ws-l1", changed)
    with pytest.raises(PulumiNotInstalled):
        engine_.up("ws-l1", config)


def test_live_refresh_and_destroy_forget_the_last_up(tmp_path: Path, committed: Engine) -> None:
    engine_ = live(tmp_path, program_version="one")
    runs = engine_.runs
    assert runs is not None
    config = two_servers()
    for kind in ("refresh", "destroy"):
        runs.remember("ws-l2", engine_.fingerprint(config), {}, 1)
        with pytest.raises(PulumiNotInstalled):
            getattr(engine_, kind)("ws-l2", config)
        assert runs.unchanged("ws-l2", engine_.fingerprint(config)) is None
