"""kit.time.utcnow: timezone-aware UTC."""

from datetime import UTC, datetime, timedelta

from kit.time import utcnow


def test_utcnow_is_timezone_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert now.tzinfo == UTC
    # Comparable with an aware datetime (a naive one would raise TypeError).
    assert now > datetime(2024, 1, 1, tzinfo=UTC)
