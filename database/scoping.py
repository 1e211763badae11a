"""Tenant scoping for single-object lookups: another tenant's object is simply not found."""

import uuid
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from database.base import Base
from kit.errors import NotFound

M = TypeVar("M", bound=Base)


def get_owned(
    session: Session,
    model: type[M],
    tenant_id: uuid.UUID,
    object_id: uuid.UUID,
    *,
    noun: str,
    field: str,
    for_update: bool = False,
) -> M:
    """The tenant's row, optionally locked until commit, or NotFound naming `field`.

    The lock is `FOR NO KEY UPDATE`: it serialises writers of the row but not the foreign-key
    checks of rows that reference it (an event or an operation inserted for a locked
    workspace), which take only `FOR KEY SHARE` and would otherwise queue behind it."""
    columns = model.__table__.c  # every tenant-owned table has `id` and `tenant_id`
    stmt = select(model).where(columns.id == object_id, columns.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update(key_share=True)
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound(f"{noun} {object_id} not found", field=field)
    return row
