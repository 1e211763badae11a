"""The per-process API key cache: a request of a known key reads no row for
`api_key_cache_seconds`, and a key revoked elsewhere is refused once that bound has passed
(a settable clock, no sleeping)."""

from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from domain.tenants import service as tenants
from kit.errors import Unauthorized
from tests.support.factories import create_tenant
from tests.support.statements import recording

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _in(session: Session) -> Callable[[Callable[[Session], T]], T]:
    return lambda fn: fn(session)


def test_a_key_revoked_by_another_process_is_refused_within_the_ttl(session: Session) -> None:
    tenant = create_tenant(session)
    clock = Clock()
    cache = tenants.KeyCache(clock)
    key = tenants.authenticate_cached(tenant.api_key, _in(session), ttl=5, cache=cache)
    # Revoked as `penguinmails key revoke` in another process would: only the row changes.
    session.execute(text("UPDATE api_keys SET revoked_at = now() WHERE id = :i"), {"i": key.id})
    session.expire_all()  # each lookup of the API has a session of its own
    clock.now += 4.9
    with recording() as recorded:
        again = tenants.authenticate_cached(tenant.api_key, _in(session), ttl=5, cache=cache)
    assert again.id == key.id and recorded.statements == []  # served from the cache
    clock.now += 0.1
    with pytest.raises(Unauthorized):
        tenants.authenticate_cached(tenant.api_key, _in(session), ttl=5, cache=cache)


def test_a_key_revoked_in_this_process_is_refused_at_once(session: Session) -> None:
    tenant = create_tenant(session)
    cache = tenants.key_cache
    key = tenants.authenticate_cached(tenant.api_key, _in(session), ttl=5)
    tenants.revoke_key(session, key.prefix)
    with pytest.raises(Unauthorized):
        tenants.authenticate_cached(tenant.api_key, _in(session), ttl=5, cache=cache)


def test_wrong_keys_are_never_cached_and_ttl_zero_reads_every_time(session: Session) -> None:
    tenant = create_tenant(session)
    cache = tenants.KeyCache(Clock())
    wrong = tenant.api_key[:-2] + "xx"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tenants.authenticate_cached(wrong, _in(session), ttl=5, cache=cache)
    for _ in range(2):
        with recording() as recorded:
            tenants.authenticate_cached(tenant.api_key, _in(session), ttl=0, cache=cache)
        assert len(recorded.statements) == 1
