"""Domain ownership below the API: first use takes the domain, another tenant is refused before
any address is looked at, and the address check runs on an index."""

import uuid

import pytest
from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session

from database.models.inboxes import Inbox
from database.models.mail_domains import DomainOwner
from domain.mail_domains import service as mail_domains
from kit.errors import ValidationFailed
from tests.support.factories import create_tenant


def test_first_use_owns_and_others_are_refused_in_any_spelling(session: Session) -> None:
    a, b = create_tenant(session), create_tenant(session)
    domain = f"Own-{uuid.uuid4().hex[:8]}.Example."
    name = mail_domains.require_owner(session, a.tenant.id, domain)
    assert name == domain.lower().rstrip(".")
    assert mail_domains.require_owner(session, a.tenant.id, name.upper()) == name
    for spelling in (name, name.upper(), name + "."):
        with pytest.raises(mail_domains.DomainClaimed) as caught:
            mail_domains.require_owner(session, b.tenant.id, spelling)
        assert caught.value.code == "domain_claimed" and caught.value.field == "email_address"
    assert session.get_one(DomainOwner, name).tenant_id == a.tenant.id


def test_a_bad_domain_is_a_validation_error_naming_the_field(session: Session) -> None:
    tenant = create_tenant(session)
    with pytest.raises(ValidationFailed) as caught:
        mail_domains.require_owner(session, tenant.tenant.id, "no_dot")
    assert caught.value.field == "email_address"


def test_the_case_insensitive_address_check_uses_an_index(session: Session) -> None:
    session.execute(text("SET LOCAL enable_seqscan = off"))
    query = select(exists().where(func.lower(Inbox.email_address) == "ceo@a-corp.example"))
    compiled = query.compile(compile_kwargs={"literal_binds": True})
    plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())
    assert "uq_inboxes_lower_email_address" in plan, plan
