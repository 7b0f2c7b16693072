"""How late the event loop runs what is due: the lag every callback and call waits.

A task asks to wake every `interval_seconds` and records how much later than asked it
did. On a healthy loop that is well under a millisecond; a handler that blocks (a slow
scan on the loop's thread, a CPU-bound step), or a machine short of CPU, shows here
first, before it shows as latency in every RPC at once.
"""

from __future__ import annotations

import asyncio

from services.runtime.metrics import Metrics
from services.runtime.tasks import stop_task

__all__ = ["LOOP_LAG_BUCKETS", "LoopLag"]

LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: from a loop that keeps up to one stalled for seconds."""


class LoopLag:
    """Samples the running loop's lag into `superapp_event_loop_lag_seconds`."""

    def __init__(self, metrics: Metrics, *, interval_seconds: float = 0.5) -> None:
        self._observe = metrics.histogram(
            "superapp_event_loop_lag_seconds",
            "How much later than due the event loop woke a sleeping task.",
            buckets=LOOP_LAG_BUCKETS,
        ).observe
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._task = asyncio.create_task(self._sample(), name="event-loop-lag")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            await stop_task(self._task, within=1.0)
            self._task = None

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._observe(max(0.0, loop.time() - due))
