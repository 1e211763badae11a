"""kit.time.utcnow: timezone-aware UTC."""

from datetime import UTC, datetime, timedelta

from kit.time import utcnow


def test_utcnow_is_timezone_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert now.tzinfo == UTC
    # Comparable with another aware datetime (a naive one would raise TypeError).
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=5)
