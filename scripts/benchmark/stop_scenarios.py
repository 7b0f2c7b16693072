"""Stop scenarios: how long stopping takes when what is stopped will not stop.

A service asked to stop must stop (`services.runtime.tasks`), so every stop path has a
bound. Each operation here builds the stubborn part in the bench process, stops it, and
reports the stop's wall time; the targets are the bounds the design promises. The
errors those stops log on purpose (a task abandoned, a release cancelled) are kept out
of the bench's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from opentelemetry.sdk.trace import TracerProvider

from bff.config import BffSettings
from bff.server import BffServer
from scripts.benchmark.repeated import repeating
from scripts.benchmark.scenario import Scenario, Target
from scripts.benchmark.stubborn import BareApp, swallowing
from services.runtime.serving import ServiceSpec, start_grpc_service
from services.runtime.settings import ServiceSettings
from services.runtime.tasks import stop_task

__all__ = ["stop_scenarios"]

_ABANDON_AFTER = 0.3
_RELEASE_SECONDS = 0.3
_BFF_GRACE_SECONDS = 1
_BFF_RELEASE_SECONDS = 0.5
# Whose deliberate failures these scenarios provoke.
_LOGGERS = ("services.runtime.tasks", "services.runtime.serving", "bff.server", "uvicorn.error")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


async def _end(stopped: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Let swallowing tasks go, once a scenario has timed their stop."""
    stopped.set()
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5.0)


async def _stop_a_task_that_swallows_two() -> float:
    stopped = asyncio.Event()
    task = swallowing(2, stopped)()
    await asyncio.sleep(0)
    began = time.perf_counter()
    ended = await stop_task(task, within=5.0)
    took = time.perf_counter() - began
    await _end(stopped, [task])
    if not ended:
        raise RuntimeError("a task that swallows two cancellations did not stop within 5 s")
    return took


async def _abandon_a_task_that_never_stops() -> float:
    stopped = asyncio.Event()
    task = swallowing(10**9, stopped)()
    await asyncio.sleep(0)
    began = time.perf_counter()
    with _quiet():
        ended = await stop_task(task, within=_ABANDON_AFTER)
    took = time.perf_counter() - began
    await _end(stopped, [task])
    if ended:
        raise RuntimeError("a task that swallows every cancellation stopped")
    return took


async def _stop_a_service_past_a_stuck_closer() -> float:
    stopped = asyncio.Event()
    stubborn = swallowing(10**9, stopped)
    stuck_tasks: list[asyncio.Task[None]] = []

    async def stuck() -> None:
        stuck_tasks.append(task := stubborn())
        await task  # every cancellation of this closer reaches the swallower

    async def released() -> None:
        return None

    spec = ServiceSpec(
        domain="bench.superapp",
        service_names=[],
        register=lambda server: None,
        probe=released,
        closers=[released, stuck],  # released in reverse: the stuck one first
    )
    service = await start_grpc_service(
        spec,
        ServiceSettings(port=0, health_probe_seconds=0.2),
        env_prefix="SUPERAPP_BENCH_",
        tracer_provider=TracerProvider(),
    )
    service.release_seconds = _RELEASE_SECONDS
    began = time.perf_counter()
    with _quiet():
        await service.stop(0)
    took = time.perf_counter() - began
    await _end(stopped, stuck_tasks)
    return took


async def _stop_a_bff_whose_shutdown_hangs() -> float:
    settings = BffSettings(port=0, shutdown_grace_seconds=_BFF_GRACE_SECONDS)
    app = BareApp(hang_on_shutdown=True)
    server = BffServer(app, settings, release_seconds=_BFF_RELEASE_SECONDS)
    await server.start()
    began = time.perf_counter()
    with _quiet():
        await server.stop()
    took = time.perf_counter() - began
    async with asyncio.timeout(5.0):
        await app.release()
    return took


def stop_scenarios() -> list[Scenario]:
    """Each stop path against its bound; none has a ceiling."""
    bff_bound = _BFF_GRACE_SECONDS + _BFF_RELEASE_SECONDS
    return [
        Scenario(
            "runtime.stop_task (2 cancellations swallowed)",
            repeating(_stop_a_task_that_swallows_two),
            target=Target("p99", at_most=1000, source="asked again every 100 ms"),
        ),
        Scenario(
            f"runtime.stop_task (abandoned at its {_ABANDON_AFTER:g} s bound)",
            repeating(_abandon_a_task_that_never_stops),
            target=Target(
                "p99", at_least=_ABANDON_AFTER * 1000, at_most=1000, source="the bound, no more"
            ),
        ),
        Scenario(
            f"runtime.service stop (stuck closer, release {_RELEASE_SECONDS:g} s)",
            repeating(_stop_a_service_past_a_stuck_closer),
            target=Target("p99", at_most=3000, source="the release bound, then the abandon"),
        ),
        Scenario(
            f"bff.stop (app shutdown hangs, grace {_BFF_GRACE_SECONDS} s, "
            f"release {_BFF_RELEASE_SECONDS:g} s)",
            repeating(_stop_a_bff_whose_shutdown_hangs),
            target=Target("p99", at_most=4000, source=f"{bff_bound:g} s, then the cancellation"),
        ),
    ]
