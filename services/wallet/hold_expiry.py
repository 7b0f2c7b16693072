"""The sweep that records expired holds and releases their funds."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.database.batch_writer import BatchWriter
from services.runtime.clock import Clock
from services.runtime.errors import Unavailable
from services.wallet.holds import Holds

__all__ = ["HoldExpirySweeper"]

_log = logging.getLogger(__name__)


class HoldExpirySweeper:
    """Every `interval` seconds, expires due holds through the ledger's writer."""

    def __init__(self, writer: BatchWriter, holds: Holds, clock: Clock, interval: float) -> None:
        self._writer = writer
        self._holds = holds
        self._clock = clock
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping on the running loop."""
        self._task = asyncio.create_task(self._run(), name="hold-expiry")

    async def close(self) -> None:
        """Stop sweeping; a sweep in progress finishes in the writer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def sweep(self) -> int:
        """Expire one batch of due holds now; returns how many."""
        return await self._writer.submit(
            lambda connection: self._holds.expire_due(connection, self._clock.now(), user_id=None)
        )

    async def _run(self) -> None:
        while True:
            try:
                expired = await self.sweep()
            except Unavailable:
                expired = 0  # shutting down, or the database is away: try again later
            except Exception:
                _log.exception("sweeping expired holds failed")
                expired = 0
            if expired:
                _log.info("released expired holds", extra={"holds": expired})
            else:
                await asyncio.sleep(self._interval)
