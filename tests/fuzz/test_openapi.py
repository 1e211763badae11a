"""The served OpenAPI, fuzzed with schemathesis: every operation with generated requests (valid
and invalid), with a real API key against the real database. Nothing may answer 5xx, and every
answer must match the schema the API publishes (status codes and bodies, the one error shape
included). Its own CI step (`make test-fuzz`), bounded by PENGUINMAILS_FUZZ_EXAMPLES per
operation (default 25)."""

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import Engine, text

from api.app import create_app
from tests.support.factories import TenantWithKey, create_tenant, create_workspace

EXAMPLES = int(os.environ.get("PENGUINMAILS_FUZZ_EXAMPLES", "25"))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@pytest.fixture(scope="module")
def tenant(engine: Engine) -> Iterator[TenantWithKey]:
    """One tenant with a key and a sandbox workspace, committed (the app opens its own
    sessions); the tables are emptied when the module is done."""
    from database.base import Base
    from database.session import session_scope

    with session_scope() as session:
        made = create_tenant(session)
        create_workspace(session, made)
    yield made
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error_and_every_answer_matches_the_schema(
    case: schemathesis.Case, tenant: TenantWithKey
) -> None:
    case.call_and_validate(
        headers=tenant.headers, checks=[not_a_server_error, response_schema_conformance]
    )
