"""The desired fleet read from the database."""

import pytest
from sqlalchemy.orm import Session

from automation.desired_state import build_fleet_config
from automation.engines import engine_for
from automation.errors import StackConfigError
from automation.sandbox.engine import SandboxEngine
from tests.support import factories


def test_fleet_from_rows_with_secrets_decrypted(session: Session) -> None:
    tenant = factories.create_tenant(session)
    ws = factories.create_workspace(session, tenant)
    factories.create_mail_domain(session, ws, "example.com")
    mx1 = factories.create_server(session, ws, name="mx1", hostname="MX1.Mail.Example.NET")
    own = factories.create_server(
        session, ws, name="own", provider="existing", ip_address="198.51.100.20"
    )
    factories.create_inbox(session, ws, email_address="Sales@Example.com", server=mx1)
    factories.create_inbox(session, ws, email_address="ops@example.com", server=own)

    config = build_fleet_config(session, ws)

    assert config.workspace_id == str(ws.id) and config.tenant_id == str(tenant.id)
    assert [s.name for s in config.servers] == ["mx1", "own"]
    assert config.servers[0].hostname == "mx1.mail.example.net"
    assert config.servers[0].ip is None
    assert config.servers[1].ip == "198.51.100.20"
    assert {m.address: m.server for m in config.mailboxes} == {
        "sales@example.com": "mx1",
        "ops@example.com": "own",
    }
    assert config.mailboxes[0].password == "correct-horse-battery-staple"
    assert config.ssh_private_key and "PRIVATE KEY" in config.ssh_private_key
    assert config.stalwart_admin_password == ws.stalwart_admin_password_encrypted
    assert "PRIVATE KEY" in config.domains[0].dkim_private_key
    # A sandbox workspace needs no real provider credentials.
    assert config.hetzner_token


def test_rows_being_deleted_are_left_out(session: Session) -> None:
    tenant = factories.create_tenant(session)
    ws = factories.create_workspace(session, tenant)
    factories.create_mail_domain(session, ws, "example.com")
    keep = factories.create_server(session, ws, name="keep")
    going = factories.create_server(session, ws, name="going", status="deleting")
    factories.create_inbox(session, ws, email_address="a@example.com", server=keep)
    factories.create_inbox(
        session, ws, email_address="b@example.com", server=keep, status="deleting"
    )
    factories.create_inbox(session, ws, email_address="c@example.com", server=going)

    config = build_fleet_config(session, ws)

    assert [s.name for s in config.servers] == ["keep"]
    assert [m.address for m in config.mailboxes] == ["a@example.com"]


def test_other_workspaces_rows_are_not_included(session: Session) -> None:
    tenant = factories.create_tenant(session)
    ws = factories.create_workspace(session, tenant)
    other = factories.create_workspace(session, factories.create_tenant(session))
    factories.create_server(session, other, name="theirs")
    assert build_fleet_config(session, ws).servers == ()


def test_invalid_rows_raise_a_config_error_naming_the_key(session: Session) -> None:
    tenant = factories.create_tenant(session)
    ws = factories.create_workspace(session, tenant)
    factories.create_server(session, ws, name="mx1", region="mars")
    with pytest.raises(StackConfigError) as err:
        build_fleet_config(session, ws)
    assert err.value.field == "penguinmails:servers[0].region"
    assert not err.value.transient


def test_engine_by_the_sandbox_flag(session: Session) -> None:
    tenant = factories.create_tenant(session)
    sandbox = factories.create_workspace(session, tenant, sandbox=True)
    live = factories.create_workspace(session, tenant, sandbox=False)
    assert isinstance(engine_for(sandbox), SandboxEngine)
    assert engine_for(sandbox).name == "sandbox"
    assert engine_for(live).name == "live"
