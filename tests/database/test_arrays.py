"""The uuid[] literal reads back in Postgres as the ids it was built from."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from database.arrays import uuid_array


def test_ids_round_trip_through_postgres(session: Session) -> None:
    ids = [uuid.uuid4() for _ in range(1000)]
    back = session.execute(
        text("SELECT unnest(CAST(:ids AS uuid[]))"), {"ids": uuid_array(ids)}
    ).scalars()
    assert list(back) == ids
    assert session.scalar(text("SELECT cardinality(CAST(:ids AS uuid[]))"), {"ids": "{}"}) == 0
    assert uuid_array([]) == "{}"


def test_only_uuids_get_in() -> None:
    with pytest.raises(ValueError):
        uuid_array(["1}', '{2"])  # type: ignore[list-item]
