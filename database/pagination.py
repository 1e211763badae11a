"""One page of rows and the total count, for every list endpoint, in one statement.

A list under a parent (a workspace's inboxes) also checks in that statement that the parent
is the tenant's: the parent row scoped to the tenant LEFT JOIN the rows, with the total as an
uncorrelated scalar subquery (evaluated once, an InitPlan). No row back at offset 0 means no
such parent (the same NotFound `get_owned` raises); a row with no entity is an empty page; a
page past the end asks again for the parent and the total (a second statement, rare)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, literal, select
from sqlalchemy.orm import Session

from database.base import Base
from kit.errors import NotFound

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Parent:
    """The tenant's row the listed rows belong to, or NotFound(`{noun} {id} not found`, field)."""

    model: type[Base]
    tenant_id: uuid.UUID
    id: uuid.UUID
    noun: str
    field: str


def paginate(
    session: Session,
    model: type[M],
    conditions: Sequence[ColumnElement[bool]],
    *,
    order_by: Sequence[Any],
    limit: int,
    offset: int,
    parent: Parent | None = None,
) -> tuple[Sequence[M], int]:
    total = (
        select(func.count()).select_from(model).where(*conditions).correlate(None).scalar_subquery()
    )
    if parent is None:  # one row to join the page to
        base: Any = select(literal(1).label("one")).subquery()
        scope: list[ColumnElement[bool]] = []
    else:
        base = parent.model.__table__
        scope = [base.c.id == parent.id, base.c.tenant_id == parent.tenant_id]
    # A plain outer join, not a lateral subquery: the ORM loads `model` rows at full speed
    # (an aliased entity costs ~50% more Python per page).
    stmt = (
        select(total, model)
        .select_from(base)
        .outerjoin(model, and_(*conditions))
        .where(*scope)
        .order_by(*order_by)
        .limit(limit)
        .offset(offset)
    )
    result = session.execute(stmt).all()
    if not result:
        # The parent row always comes back at offset 0 (with NULLs for an empty page), so
        # nothing back there means no such parent. Past the end is the rare second statement.
        found = session.scalar(select(total).select_from(base).where(*scope)) if offset else None
        if found is None:
            if parent is None:
                raise AssertionError("the one-row base always comes back")
            raise NotFound(f"{parent.noun} {parent.id} not found", field=parent.field)
        return [], int(found)
    rows = [row[1] for row in result if row[1] is not None]
    return rows, int(result[0][0] or 0)
