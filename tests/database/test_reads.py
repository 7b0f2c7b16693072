"""Reads outside transactions: a scan that runs long never holds the event loop, and a
scan made while other calls wait does not hold it at all.

How long the loop is held (against `SCAN_INLINE_BUDGET_SECONDS`) is the bench's to
measure (`scripts/bench --only database.scan`); these tests check what the other
coroutines on the loop see, which no busy machine can change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, Select, bindparam, func, literal, select

from services.database import Database


def _counting_to(last_key: str) -> Select[Any]:
    """A query that counts to `:last_key` with a recursive CTE: CPU-bound, as long as asked."""
    numbers = select(literal(1, Integer).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < bindparam(last_key)))
    return select(func.count().label("count")).select_from(numbers)


class _Ticker:
    """Another coroutine on the loop, counting the turns it gets."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)


@pytest.fixture
async def ticker() -> AsyncIterator[_Ticker]:
    """A ticker running for the test's length."""
    ticker = _Ticker()
    task = asyncio.create_task(ticker.run())
    await asyncio.sleep(0)  # it has started
    yield ticker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _scan_counting_to(database: Database, last: int, ticker: _Ticker) -> tuple[int, int]:
    """The count the scan returned, and the turns the ticker got while it ran."""
    counted = _counting_to("last")
    before = ticker.ticks
    [row] = await database.scan(counted, {"last": last})
    return row[0], ticker.ticks - before


@pytest.mark.parametrize("others_waiting", [False, True], ids=["alone", "others-waiting"])
async def test_a_long_scan_returns_every_row_while_the_loop_serves_others(
    tmp_path: Path, ticker: _Ticker, others_waiting: bool
) -> None:
    """Alone, a scan starts on the loop's thread and, past its budget, is interrupted
    and run again on a worker thread; with other calls waiting it goes to a worker at
    once. Either way the other coroutine gets turns while it runs, and every row
    comes back. (A scan that ran on the loop to its end would leave it none.)"""
    database = Database.connect(
        f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}",
        offload_scans_when=lambda: others_waiting,
    )
    try:
        await database.scan(_counting_to("last"), {"last": 10})  # opens the connections
        count, turns = await _scan_counting_to(database, 1_000_000, ticker)
    finally:
        await database.dispose()
    assert count == 1_000_000
    assert turns > 0


@pytest.mark.parametrize(
    ("others_waiting", "hops"), [(False, False), (True, True)], ids=["alone", "others-waiting"]
)
async def test_a_short_scan_stays_on_the_loop_unless_others_are_waiting(
    tmp_path: Path, ticker: _Ticker, others_waiting: bool, hops: bool
) -> None:
    """A scan well inside its budget is answered on the loop's thread, with no hop to
    a worker and back, when nothing else waits for the loop; when other calls wait,
    it goes to a worker (and the loop serves them meanwhile)."""
    database = Database.connect(
        f"sqlite+aiosqlite:///{tmp_path / 'reads.db'}",
        offload_scans_when=lambda: others_waiting,
    )
    try:
        await database.scan(_counting_to("last"), {"last": 10})  # opens the connections
        count, turns = await _scan_counting_to(database, 10, ticker)
    finally:
        await database.dispose()
    assert count == 10
    assert (turns > 0) == hops
