"""One page of rows and the total count, for every list endpoint."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

M = TypeVar("M")


def paginate(
    session: Session,
    model: type[M],
    conditions: Sequence[ColumnElement[bool]],
    *,
    order_by: Sequence[Any],
    limit: int,
    offset: int,
) -> tuple[Sequence[M], int]:
    total = session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    rows = session.scalars(
        select(model).where(*conditions).order_by(*order_by).limit(limit).offset(offset)
    ).all()
    return rows, total
