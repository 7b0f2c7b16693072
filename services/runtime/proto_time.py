"""Conversions between aware datetimes and protobuf's well-known time types."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["to_timedelta", "to_timestamp"]


def to_timestamp(moment: datetime) -> Timestamp:
    """`moment` (timezone-aware) as a Timestamp."""
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def to_timedelta(duration: Duration) -> timedelta:
    """A Duration as a timedelta (microsecond precision)."""
    return timedelta(seconds=duration.seconds, microseconds=duration.nanos // 1000)
