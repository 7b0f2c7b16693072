"""Database scenarios: how much of the event loop's CPU time a long scan takes.

`Database.scan` may hold the event loop for at most `SCAN_INLINE_BUDGET_SECONDS`: alone,
a scan starts on the loop's thread and one that runs over is interrupted and run again
on a worker; with other calls waiting it goes to a worker at once. Each operation here
is one scan that counts far past the budget (a recursive CTE, CPU-bound), measured in
the bench process by the CPU time of the loop's thread (`time.thread_time`) from the
call to its answer: CPU time, because a busy machine stretches wall time on its own.
The p50 and p99 columns are that CPU time, not the scan's latency.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, literal, select

from scripts.benchmark.environment import Environment
from scripts.benchmark.repeated import Repeated
from scripts.benchmark.scenario import Scenario, Target
from services.database import Database
from services.database.engine import SCAN_INLINE_BUDGET_SECONDS

__all__ = ["database_scenarios"]

# About 50 ms of SQLite work here: 25 budgets.
_ROWS = 200_000
_BUDGET_MS = SCAN_INLINE_BUDGET_SECONDS * 1000


def _counting() -> Select[Any]:
    """Counts to `:last` with a recursive CTE: CPU-bound, as long as asked."""
    numbers = select(literal(1, Integer).label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + 1).where(numbers.c.n < bindparam("last")))
    return select(func.count().label("count")).select_from(numbers)


def _scans(others_waiting: bool) -> Callable[[Environment], Awaitable[Repeated]]:
    async def setup(env: Environment) -> Repeated:
        database = Database.connect(
            f"sqlite+aiosqlite:///{env.work_dir / 'scans.db'}",
            offload_scans_when=lambda: others_waiting,
        )
        env.on_close(database.dispose)
        statement = _counting()
        await database.scan(statement, {"last": 10})  # opens the connections

        async def loop_cpu_of_one_scan() -> float:
            before = time.thread_time()
            [row] = await database.scan(statement, {"last": _ROWS})
            used = time.thread_time() - before
            if row[0] != _ROWS:
                raise RuntimeError(f"the scan counted {row[0]}, not {_ROWS}")
            return used

        return Repeated(loop_cpu_of_one_scan)

    return setup


def database_scenarios() -> list[Scenario]:
    """A long scan alone, and with other calls waiting; each held to its budget."""
    return [
        Scenario(
            "database.scan loop CPU (alone)",
            _scans(others_waiting=False),
            target=Target(
                "p99",
                at_least=_BUDGET_MS / 2,
                at_most=5 * _BUDGET_MS,
                source=f"inline until the {_BUDGET_MS:g} ms budget, then the hop",
            ),
        ),
        Scenario(
            "database.scan loop CPU (others waiting)",
            _scans(others_waiting=True),
            target=Target(
                "p99",
                at_most=_BUDGET_MS / 2,
                source=f"the hop alone, within half the {_BUDGET_MS:g} ms budget",
            ),
        ),
    ]
