"""`penguinmails dns publish DOMAIN --workspace W [--dry-run]` in a real process: the dry run
reads the zone on a real Knot and prints the changes it would make, changing nothing; without
--dry-run it queues the run that publishes."""

import uuid
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from database.models.operations import Operation
from domain.dns_publishing import service as publishing
from domain.dns_publishing.schemas import Rfc2136Create, WorkspaceDnsUpdate
from domain.dns_records import service as dns_records
from settings import get_settings
from tests.support import factories
from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.knot import Knot
from tests.support.serving import cli

THEIRS = "v=spf1 include:_spf.google.com ~all"


def test_dry_run_prints_the_changes_and_changes_nothing(
    database_url: str, committed: Engine, tmp_path: Path, knot: Knot
) -> None:
    zone = knot.add_zone("cli-publish.example", f'@ TXT "{THEIRS}"\n@ MX 5 mx.other.example.')
    with Session(committed) as session:
        tenant = factories.create_tenant(session)
        ws = factories.create_workspace(session, tenant, sandbox=True)
        factories.create_mail_domain(session, ws, zone)
        server = factories.create_server(
            session, ws, hostname=f"mail.{zone}", ip_address="192.0.2.77"
        )
        factories.create_inbox(session, ws, email_address=f"sales@{zone}", server=server)
        dns_records.generate_for_server(session, server, settings=get_settings())
        connection = publishing.create_connection(
            session,
            tenant.tenant.id,
            ws.id,
            Rfc2136Create(
                name="knot",
                kind="rfc2136",
                server=knot.server,
                tsig_key_name=knot.key_name,
                tsig_secret=knot.secret,
            ),
        )
        publishing.set_default(
            session,
            tenant.tenant.id,
            ws.id,
            WorkspaceDnsUpdate(dns_connection_id=connection.id),
            settings=get_settings(),
        )
        session.commit()
        workspace_id = str(ws.id)
        ops_before = len(session.scalars(select(Operation)).all())
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=str(tmp_path),
    )
    done = cli(env, "dns", "publish", zone, "--workspace", workspace_id, "--dry-run")
    assert done.returncode == 1, done.stderr  # the foreign MX is a conflict
    out = done.stdout
    assert f"spf              TXT   {zone}: published" in out
    assert f"    - {zone} TXT {THEIRS}" in out
    assert f"    + {zone} TXT v=spf1 include:_spf.google.com ip4:192.0.2.77 ~all" in out
    assert "mx               MX" in out and "conflict" in out and "mx.other.example" in out
    assert f"    + mail.{zone} A 192.0.2.77" in out
    assert "(dry run: nothing was changed)" in out
    assert knot.secret not in out + done.stderr
    # Nothing written to the zone.
    assert knot.values(zone, "TXT") == [THEIRS]
    assert knot.values(f"mail.{zone}", "A") == []

    queued = cli(env, "dns", "publish", zone, "--workspace", workspace_id)
    assert queued.returncode == 0, queued.stderr
    assert "queued operation" in queued.stdout
    op_id = queued.stdout.split("queued operation ", 1)[1].split(":", 1)[0]
    with Session(committed) as session:
        op = session.get_one(Operation, uuid.UUID(op_id))
        # It joined the `up` the default connection queued (one queued up per workspace).
        assert (op.kind, op.status) == ("up", "queued")
        assert len(session.scalars(select(Operation)).all()) == ops_before
