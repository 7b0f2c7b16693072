"""The health reporter stops probing when the service drains, whatever the timing."""

from __future__ import annotations

import asyncio
import contextlib

from grpc_health.v1 import health_pb2

from services.runtime.health import LIVENESS, HealthReporter


async def test_a_drain_that_lands_as_a_probe_answers_still_finishes() -> None:
    # On Python 3.11, a cancellation that arrives as `wait_for`'s probe completes is
    # lost (CPython gh-86296): the prober went back to sleep, and a drain that awaited
    # it once waited forever. Seen as a 120 s hang when a test stopped a service.
    drains: list[asyncio.Task[None]] = []
    draining = asyncio.Event()
    probes = 0

    async def probe() -> None:
        nonlocal probes
        probes += 1
        if probes == 2:  # the first background probe: drain as it answers
            drains.append(asyncio.ensure_future(reporter.drain()))
            draining.set()

    reporter = HealthReporter(["superapp.test.v1.Test"], probe, interval_seconds=0.01)
    await reporter.start()
    await asyncio.wait_for(draining.wait(), timeout=3.0)
    done, _ = await asyncio.wait(drains, timeout=3.0)
    assert done, "drain still waiting for the prober"
    probes_after_drain = probes
    await asyncio.sleep(0.1)
    assert probes == probes_after_drain


async def test_a_drain_reports_not_serving_at_once_even_if_the_prober_will_not_stop() -> None:
    stuck, released = asyncio.Event(), asyncio.Event()

    async def probe() -> None:
        if not stuck.is_set():
            return
        while not released.is_set():  # hangs, swallowing every cancellation until released
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)

    reporter = HealthReporter(["superapp.test.v1.Test"], probe, interval_seconds=0.01)
    await reporter.start()
    stuck.set()
    await asyncio.sleep(0.05)  # the prober is now inside the stuck probe
    drain = asyncio.create_task(reporter.drain())
    await asyncio.sleep(0.05)
    try:
        request = health_pb2.HealthCheckRequest(service="")
        reply = await reporter.servicer.Check(request, context=None)
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        released.set()
        # The drain's next cancellation of the prober now lands.
        done, _ = await asyncio.wait({drain}, timeout=3.0)
        assert done


async def test_liveness_is_serving_while_the_process_runs_whatever_its_dependencies() -> None:
    # A Kubernetes liveness probe asks `liveness`: a service whose database is away is
    # taken out of rotation (overall NOT_SERVING) but not restarted.
    async def unreachable_database() -> None:
        raise ConnectionError("database is away")

    reporter = HealthReporter(["superapp.test.v1.Test"], unreachable_database, 0.01)
    await reporter.start()

    async def status(name: str) -> int:
        request = health_pb2.HealthCheckRequest(service=name)
        reply = await reporter.servicer.Check(request, context=None)
        return int(reply.status)

    try:
        assert await status("") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await status(LIVENESS) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await reporter.drain()
    assert await status(LIVENESS) == health_pb2.HealthCheckResponse.NOT_SERVING
