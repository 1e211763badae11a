"""`idempotency.purge`: stored `Idempotency-Key` answers older than `idempotency_ttl_seconds`
deleted in batches, one short transaction each (`domain.idempotency.service.purge_expired`).
A key reused after expiry runs its create again whether or not this job got to it first."""

from datetime import datetime

from database.transactions import run_in_transaction
from domain.idempotency.service import PURGE_BATCH, purge_expired
from kit.time import utcnow
from settings.core import CoreSettings

NAME = "idempotency.purge"
MAX_INTERVAL_SECONDS = 3_600


def interval_seconds(settings: CoreSettings) -> float:
    return float(min(settings.idempotency_ttl_seconds, MAX_INTERVAL_SECONDS))


def run(settings: CoreSettings, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """The number of keys deleted."""
    at = now or utcnow()
    total = 0
    while True:
        deleted = run_in_transaction(
            lambda session: purge_expired(
                session, ttl_seconds=settings.idempotency_ttl_seconds, now=at, limit=batch
            )
        )
        total += deleted
        if deleted < batch:
            return total
