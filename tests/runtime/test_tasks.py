"""Shutdown is bounded even when the code being stopped swallows its cancellation.

How long each stop takes is the bench's to measure (`scripts/bench --only runtime.`);
here a bound is ten times or more what the stop needs, to tell "stops" from "hangs".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

import pytest
from opentelemetry.sdk.trace import TracerProvider

from scripts.benchmark.stubborn import swallowing
from services.runtime.serving import ServiceSpec, start_grpc_service
from services.runtime.settings import ServiceSettings
from services.runtime.tasks import finish_within, stop_task


async def test_a_task_that_swallows_a_cancellation_is_asked_again() -> None:
    task = swallowing(2, asyncio.Event())()
    await asyncio.sleep(0)
    # Asked again every 0.1 s: the third cancellation lands, well within the bound.
    assert await stop_task(task, within=5.0)
    assert task.cancelled()


async def test_a_task_that_never_stops_is_abandoned_at_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopped = asyncio.Event()
    task = swallowing(10**9, stopped)()
    await asyncio.sleep(0)
    try:
        async with asyncio.timeout(10):
            assert not await stop_task(task, within=0.3)
        assert not task.done()
        assert "task swallows-1000000000 did not stop within 0.3s; abandoning it" in [
            record.getMessage() for record in caplog.records
        ]
    finally:
        stopped.set()
        await asyncio.wait({task}, timeout=1.0)


async def test_the_callers_own_cancellation_still_reaches_the_caller() -> None:
    stopped = asyncio.Event()
    stubborn = swallowing(10**9, stopped)()
    stopper = asyncio.create_task(stop_task(stubborn, within=30.0))
    await asyncio.sleep(0.15)
    stopper.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await stopper
    finally:
        stopped.set()
        await asyncio.wait({stubborn}, timeout=1.0)


async def test_finish_within_reports_failure_and_overrun_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise RuntimeError("database gone")

    async def hangs() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return  # ends only once cancelled

    async def finishes() -> None:
        await asyncio.sleep(0.01)

    def broken() -> Awaitable[None]:
        raise RuntimeError("fails before it can be awaited")

    assert not await finish_within(fails, seconds=1.0, name="releasing the database")
    assert not await finish_within(hangs, seconds=0.1, name="releasing the bus")
    assert not await finish_within(broken, seconds=1.0, name="releasing the channel")
    assert await finish_within(finishes, seconds=10.0, name="releasing the writer")
    messages = [record.getMessage() for record in caplog.records]
    assert "releasing the database failed" in messages
    assert "releasing the bus did not finish within 0.1s; cancelling it" in messages
    assert "releasing the channel failed" in messages


async def test_a_task_abandoned_at_the_bound_still_has_its_failure_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    give_up = asyncio.Event()

    async def stubborn() -> None:
        while not give_up.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
        raise RuntimeError("failed after it was abandoned")

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert not await stop_task(task, within=0.2)
    give_up.set()
    task.cancel()  # wakes it; it swallows this one too, then fails
    await asyncio.wait({task}, timeout=1.0)
    await asyncio.sleep(0)  # done-callbacks run on the next turn of the loop
    assert "abandoned task failed later" in [record.getMessage() for record in caplog.records]


async def test_a_service_stops_in_bounded_time_and_releases_past_a_stuck_closer() -> None:
    stopped = asyncio.Event()
    released: list[str] = []
    stubborn = swallowing(10**9, stopped)

    async def stuck() -> None:
        await stubborn()  # every cancellation of this closer reaches the swallower

    async def database() -> None:
        released.append("database")

    async def ping() -> None:
        return None

    spec = ServiceSpec(
        domain="test.superapp",
        service_names=[],
        register=lambda server: None,
        probe=ping,
        closers=[database, stuck],  # released in reverse: the stuck one first
    )
    service = await start_grpc_service(
        spec,
        ServiceSettings(port=0, health_probe_seconds=0.2),
        env_prefix="TEST_",
        tracer_provider=TracerProvider(),
    )
    service.release_seconds = 0.3
    try:
        async with asyncio.timeout(30):
            await service.stop(0)
        assert released == ["database"]
    finally:
        stopped.set()
        for task in asyncio.all_tasks():
            if task.get_name().startswith("swallows-"):
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
