"""Idempotent creates: the first answer to an `Idempotency-Key` is stored in the same transaction
as the create and replayed for a repeat with the same body; another body is refused.

The key row is inserted before the create runs. A concurrent request with the same key blocks on
that insert until the first commits, then replays its answer, so one key never creates twice.

Answers are kept for `idempotency_ttl_seconds` (from `created_at`): a key older than that counts
as never used (its row is replaced and the create runs again), and `purge_expired` deletes such
rows in batches."""

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.idempotency import IdempotencyKey
from kit.errors import ValidationFailed
from kit.time import utcnow

DEFAULT_TTL_SECONDS = 86_400
PURGE_BATCH = 1_000


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run(
    session: Session,
    tenant_id: uuid.UUID,
    key: str | None,
    request_fingerprint: str,
    produce: Callable[[], tuple[int, dict[str, Any]]],
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    now: datetime | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """(status, body, replayed)."""
    if key is None:
        status, body = produce()
        return status, body, False
    if not 1 <= len(key) <= 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key"
        )
    cutoff = (now or utcnow()) - timedelta(seconds=ttl_seconds)
    # An expired key is forgotten before it is looked at, so its reuse creates again.
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at < cutoff,
        )
    )
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(tenant_id=tenant_id, key=key, fingerprint=request_fingerprint)
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is None:
        stored = session.scalars(
            select(IdempotencyKey)
            .where(IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        ).one()
        if stored.fingerprint != request_fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was used with a different request body",
                field="Idempotency-Key",
            )
        assert stored.status_code is not None and stored.response_encrypted is not None
        return stored.status_code, json.loads(stored.response_encrypted), True
    status, body = produce()
    stored = session.get_one(IdempotencyKey, (tenant_id, key))
    stored.status_code = status
    stored.response_encrypted = json.dumps(body, default=str)
    return status, body, False


def purge_expired(
    session: Session, *, ttl_seconds: int, now: datetime | None = None, limit: int = PURGE_BATCH
) -> int:
    """Delete up to `limit` keys older than the TTL (every tenant's: the sweep is the
    operator's, and it reads nothing back); the number deleted. Idempotent: a second call
    with the same `now` deletes nothing more than the first left."""
    cutoff = (now or utcnow()) - timedelta(seconds=ttl_seconds)
    batch = (
        select(IdempotencyKey.tenant_id, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < cutoff)
        .order_by(IdempotencyKey.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = session.execute(
        delete(IdempotencyKey).where(
            tuple_(IdempotencyKey.tenant_id, IdempotencyKey.key).in_(batch)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
