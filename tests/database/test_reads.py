"""Reads outside transactions: a scan that runs long never holds the event loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import Integer, bindparam, func, literal, select

from services.database import Database
from services.database.engine import SCAN_INLINE_BUDGET_SECONDS


async def test_a_slow_scan_moves_off_the_event_loop_and_still_returns_every_row(
    tmp_path: Path,
) -> None:
    """SQLite scans start on the loop's thread; past the budget one is interrupted and
    run again on a worker thread, so other calls keep being served meanwhile."""
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}")
    numbers = select(literal(1, Integer).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < bindparam("last")))
    counted = select(func.count().label("count")).select_from(numbers)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0.01)
        began = time.perf_counter()
        [row] = await database.scan(counted, {"last": 2_000_000})
        took = time.perf_counter() - began
        await asyncio.sleep(0.01)  # the ticker notes the gap it saw, if any
    finally:
        ticking.cancel()
        await database.dispose()
    assert row[0] == 2_000_000
    # The query ran far longer than the budget, yet the loop never paused for long.
    assert took > 0.1
    assert max(gaps) < 25 * SCAN_INLINE_BUDGET_SECONDS
