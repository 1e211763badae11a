"""Idempotent creates: the first answer to an `Idempotency-Key` is stored in the same transaction
as the create and replayed for a repeat with the same body; another body is refused.

The key row is inserted before the create runs. A concurrent request with the same key blocks on
that insert until the first commits, then replays its answer, so one key never creates twice."""

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.idempotency import IdempotencyKey
from kit.errors import ValidationFailed


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def run(
    session: Session,
    tenant_id: uuid.UUID,
    key: str | None,
    request_fingerprint: str,
    produce: Callable[[], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """(status, body, replayed)."""
    if key is None:
        status, body = produce()
        return status, body, False
    if not 1 <= len(key) <= 255:
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 characters", field="Idempotency-Key"
        )
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(tenant_id=tenant_id, key=key, fingerprint=request_fingerprint)
        .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is None:
        stored = session.scalars(
            select(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
            )
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
