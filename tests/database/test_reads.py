"""Reads outside transactions: a scan that runs long never holds the event loop, and a
scan made while other calls wait does not hold it at all."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, Select, bindparam, func, literal, select

from services.database import Database
from services.database.engine import SCAN_INLINE_BUDGET_SECONDS


def _counting_to(last_key: str) -> Select[Any]:
    """A query that counts to `:last_key` with a recursive CTE: CPU-bound, as long as asked."""
    numbers = select(literal(1, Integer).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < bindparam(last_key)))
    return select(func.count().label("count")).select_from(numbers)


@pytest.mark.parametrize("others_waiting", [False, True], ids=["alone", "others-waiting"])
async def test_a_scan_holds_the_event_loop_at_most_its_budget_and_not_at_all_under_load(
    tmp_path: Path, others_waiting: bool
) -> None:
    """Alone, a scan starts on the loop's thread (no hop to pay for) and, past the
    budget, is interrupted and run again on a worker thread, returning every row; while
    other calls are in flight it goes straight to a worker. Told apart by the CPU time
    the loop's thread spends on one long scan: CPU time, not pauses of the loop, which
    a busy machine stretches on its own."""
    database = Database.connect(
        f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}",
        offload_scans_when=lambda: others_waiting,
    )
    counted = _counting_to("last")
    try:
        await database.scan(counted, {"last": 10})  # opens this thread's connection
        before = time.thread_time()
        began = time.perf_counter()
        [row] = await database.scan(counted, {"last": 1_000_000})
        took = time.perf_counter() - began
        on_loop_thread = time.thread_time() - before
    finally:
        await database.dispose()
    assert row[0] == 1_000_000
    assert took > 50 * SCAN_INLINE_BUDGET_SECONDS  # far longer than the loop may be held
    if others_waiting:
        # The hop alone: a few hundred microseconds.
        assert on_loop_thread < SCAN_INLINE_BUDGET_SECONDS / 2
    else:
        # The inline attempt, until the budget interrupted it; then the hop.
        assert SCAN_INLINE_BUDGET_SECONDS / 2 < on_loop_thread < 5 * SCAN_INLINE_BUDGET_SECONDS
