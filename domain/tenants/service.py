"""Tenants and their API keys. A key is `pm_<prefix>_<secret>`; only its SHA-256 is stored, looked
up by the public prefix and compared in constant time."""

import contextlib
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from database.models.tenants import ApiKey, Tenant
from kit.errors import NotFound, Unauthorized, ValidationFailed
from kit.time import utcnow

KEY_PREFIX = "pm"
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_tenant(session: Session, name: str) -> Tenant:
    name = name.strip()
    if not name or len(name) > 255:
        raise ValidationFailed("tenant name must be 1 to 255 characters", field="name")
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found", field="tenant_id")
    return tenant


def list_tenants(session: Session) -> Sequence[Tenant]:
    return session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)).all()


def list_keys(session: Session, tenant_id: uuid.UUID) -> Sequence[ApiKey]:
    return session.scalars(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    ).all()


def issue_key(session: Session, tenant: Tenant, name: str = "default") -> IssuedKey:
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(tenant_id=tenant.id, name=name, prefix=prefix, key_hash=_hash(plaintext))
    session.add(key)
    session.flush()
    return IssuedKey(api_key=key, plaintext=plaintext)


def revoke_key(session: Session, prefix_or_id: str) -> ApiKey:
    condition = ApiKey.prefix == prefix_or_id
    with contextlib.suppress(ValueError):
        condition = condition | (ApiKey.id == uuid.UUID(prefix_or_id))
    key = session.scalars(select(ApiKey).where(condition)).first()
    if key is None:
        raise NotFound(f"no API key with prefix or id {prefix_or_id!r}", field="key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    key_cache.forget(key.id)
    return key


class KeyCache:
    """Keys authenticated in this process, by the hash of their plaintext, for `ttl` seconds
    of `clock`: a request of a cached key reads no row. Only successes are kept, so a wrong
    key is always checked against the database; a revoked key is refused once its entry is
    older than the TTL (at once in the process that revoked it: `forget`)."""

    MAX_ENTRIES = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, ttl: float) -> ApiKey | None:
        entry = self._entries.get(digest)
        if entry is None or self.clock() - entry[0] >= ttl:
            return None
        return entry[1]

    def put(self, digest: str, key: ApiKey) -> ApiKey:
        """Keeps, and returns, a copy bound to no session: the row's values as read, which no
        commit or rollback elsewhere can expire."""
        copy = ApiKey(**{c.key: getattr(key, c.key) for c in ApiKey.__mapper__.column_attrs})
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[digest] = (self.clock(), copy)
        return copy

    def forget(self, key_id: uuid.UUID) -> None:
        with self._lock:
            for digest in [d for d, (_, k) in self._entries.items() if k.id == key_id]:
                del self._entries[digest]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


key_cache = KeyCache()


def cached_key(plaintext: str, *, ttl: float, cache: KeyCache | None = None) -> ApiKey | None:
    """The key if the process's cache holds it (no I/O: the API asks this on its event loop
    before handing a miss to `authenticate_cached` on a thread)."""
    if ttl <= 0:
        return None
    return (cache or key_cache).get(_hash(plaintext), ttl)


def authenticate_cached(
    plaintext: str,
    transaction: Callable[[Callable[[Session], ApiKey]], ApiKey],
    *,
    ttl: float,
    cache: KeyCache | None = None,
) -> ApiKey:
    """`authenticate` through the process's key cache (`ttl` seconds; 0: not cached); the
    database is read, in a transaction of `transaction`, only on a miss."""
    cache = cache or key_cache
    digest = _hash(plaintext)
    if ttl > 0:
        hit = cache.get(digest, ttl)
        if hit is not None:
            return hit
    key = transaction(lambda session: authenticate(session, plaintext))
    if ttl > 0:
        return cache.put(digest, key)
    return key


def authenticate(session: Session, plaintext: str) -> ApiKey:
    """The key's row, or Unauthorized. Every failure looks the same to the caller. Reads only:
    the use is recorded by `touch`, in a transaction of its own."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthorized("invalid API key")
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    expected = key.key_hash if key is not None else _hash("")
    matches = hmac.compare_digest(expected, _hash(plaintext))
    if key is None or not matches or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return key


_touched: dict[uuid.UUID, float] = {}
_touched_lock = threading.Lock()


def touch_due(key: ApiKey, now: datetime | None = None) -> bool:
    """Whether `touch` could write anything (no statement, no transaction needed otherwise)."""
    now = now or utcnow()
    if key.last_used_at is not None and now - key.last_used_at <= LAST_USED_RESOLUTION:
        return False
    tick = time.monotonic()
    return tick - _touched.get(key.id, -1e9) >= LAST_USED_RESOLUTION.total_seconds()


def touch(session: Session, key: ApiKey, now: datetime | None = None) -> bool:
    """Record that `key` was used, at most once per LAST_USED_RESOLUTION per key and process,
    and never waiting: the row is skipped if another request holds it (`SKIP LOCKED`), since
    that request is recording the same use. The caller commits at once; no request ever holds
    this row for its own duration. True when a row was written."""
    now = now or utcnow()
    if key.last_used_at is not None and now - key.last_used_at <= LAST_USED_RESOLUTION:
        return False
    tick = time.monotonic()
    with _touched_lock:
        if tick - _touched.get(key.id, -1e9) < LAST_USED_RESOLUTION.total_seconds():
            return False
        _touched[key.id] = tick
    free = (
        select(ApiKey.id)
        .where(ApiKey.id == key.id)
        .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    written = session.execute(
        update(ApiKey).where(ApiKey.id == free).values(last_used_at=now).returning(ApiKey.id)
    ).first()
    return written is not None
