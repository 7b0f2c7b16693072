"""Server-generated ids: canonical UUIDv7, strictly increasing, and true to the clock."""

from __future__ import annotations

import threading
import time
import uuid

from services.runtime.ids import new_id


def _millis(identifier: str) -> int:
    return uuid.UUID(identifier).int >> 80


def test_ids_are_canonical_version_7_uuids() -> None:
    identifier = new_id()
    parsed = uuid.UUID(identifier)
    assert str(parsed) == identifier
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_increase_strictly_even_within_one_millisecond() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    # Ids did share a millisecond (20,000 take a few), so their order within one was
    # put to the test; how many share one depends on the machine's speed.
    assert len({_millis(i) for i in ids}) < len(ids)


def test_timestamps_follow_the_clock_at_any_rate() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(50_000)]
    after = time.time_ns() // 1_000_000
    # A generator that steps the timestamp per id would be tens of seconds ahead here.
    assert before <= _millis(ids[0]) <= _millis(ids[-1]) <= after


def test_threads_drawing_at_once_never_collide() -> None:
    drawn: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [identifier for into in drawn for identifier in into]
    assert len(set(every)) == len(every)
    for into in drawn:
        assert into == sorted(into)
