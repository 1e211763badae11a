"""One page of rows and the total count, for every list endpoint, in one statement.

A list under a parent (a workspace's inboxes) also checks in that statement that the parent
is the tenant's: the parent row scoped to the tenant, LEFT JOIN LATERAL the page, with the
total as a scalar subquery (evaluated once, an InitPlan). No row back means no such parent
(the same NotFound `get_owned` raises); a row with no entity is an empty page."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, literal, select, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import coercions, roles
from sqlalchemy.sql.util import ClauseAdapter

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
    lateral = (
        select(model).where(*conditions).order_by(*order_by).limit(limit).offset(offset)
    ).lateral("page")
    entity = aliased(model, lateral)
    adapter = ClauseAdapter(lateral)
    total = (
        select(func.count()).select_from(model).where(*conditions).correlate(None).scalar_subquery()
    )
    if parent is None:  # one row to join the page to
        stmt = select(total, entity).select_from(select(literal(1).label("one")).subquery())
    else:
        table = parent.model.__table__
        stmt = (
            select(total, entity)
            .select_from(table)
            .where(table.c.id == parent.id, table.c.tenant_id == parent.tenant_id)
        )
    # the outer query keeps the page's order (the join makes no promise of it on its own)
    outer_order = [adapter.traverse(coercions.expect(roles.OrderByRole, o)) for o in order_by]
    stmt = stmt.outerjoin(lateral, true()).order_by(*outer_order)
    result = session.execute(stmt).all()
    if not result:
        assert parent is not None
        raise NotFound(f"{parent.noun} {parent.id} not found", field=parent.field)
    rows = [row[1] for row in result if row[1] is not None]
    return rows, int(result[0][0] or 0)
