"""The background task that records expired reservations and returns their units.

Reads already treat a reservation as expired the instant its expire_time passes; the
sweeper makes it so in the database, shortly after, and publishes StockReleased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.catalogue.inventory import Inventory

__all__ = ["ReservationSweeper"]

_log = logging.getLogger(__name__)
_BATCH = 100


class ReservationSweeper:
    """Every `interval_seconds`, expires what is due, in batches until none is left."""

    def __init__(self, inventory: Inventory, interval_seconds: float) -> None:
        self._inventory = inventory
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reservation-sweeper")

    async def stop(self) -> None:
        """Stop sweeping; a batch in progress is rolled back and swept again next time."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                while await self._inventory.expire_due(_BATCH) == _BATCH:
                    pass
            except Exception as error:  # the database may be away; try again next round
                _log.warning("expiring reservations failed: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self._interval)
