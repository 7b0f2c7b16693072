"""The event loop's lag: a loop held by blocking work shows it."""

from __future__ import annotations

import asyncio
import time

from services.runtime.loop_lag import LoopLag
from services.runtime.metrics import Metrics


async def test_a_blocked_loop_shows_as_lag() -> None:
    metrics = Metrics("test")
    lag = LoopLag(metrics, interval_seconds=0.01)
    lag.start()
    try:
        await asyncio.sleep(0.05)
        before = metrics.value("superapp_event_loop_lag_seconds_count")
        time.sleep(0.3)  # noqa: ASYNC251  # deliberately: a handler that blocks the loop
        for _ in range(3000):
            await asyncio.sleep(0.01)
            if metrics.value("superapp_event_loop_lag_seconds_count") > before:
                break
    finally:
        await lag.stop()

    count = metrics.value("superapp_event_loop_lag_seconds_count")
    # At least one sample waited out the block: later than due by more than 0.25 s.
    assert metrics.value("superapp_event_loop_lag_seconds_bucket", {"le": "0.25"}) < count
