"""A background task that does bounded batches of housekeeping on a schedule.

Each sweep handles at most one batch (so no transaction grows with the backlog) and
says how many rows it handled; a full batch means more may be waiting, so the next one
runs at once, and otherwise the sweeper sleeps until the next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.runtime.errors import Unavailable
from services.runtime.tasks import stop_task

__all__ = ["Sweeper"]

_log = logging.getLogger(__name__)


class Sweeper:
    """Runs `sweep()` every `interval_seconds`, and back to back while batches are full."""

    def __init__(
        self,
        name: str,
        sweep: Callable[[], Awaitable[int]],
        *,
        batch: int,
        interval_seconds: float,
    ) -> None:
        self._name = name
        self._sweep = sweep
        self._batch = batch
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        """Stop sweeping. A batch cut short either still completes (a command already
        handed to a writer) or is rolled back; what is left waits for the next start."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task, within=2.0)

    async def _run(self) -> None:
        while True:
            try:
                while await self._sweep() >= self._batch:
                    pass
            except Unavailable:
                pass  # shutting down, or the database is away: next round
            except Exception as error:  # the database may be away: next round
                _log.warning(
                    "%s failed (%s: %s); trying again next round",
                    self._name,
                    type(error).__name__,
                    error,
                )
            await asyncio.sleep(self._interval)
