"""A self-timed workload of one operation after another, each reporting its own figure.

For what a request rate does not describe: how long a stop takes, how much of the event
loop's CPU time a scan uses. Such an operation can take longer than a short window, so
every measured window holds at least one. The concurrency setting does not apply. The
operations run in the bench process, so its CPU time is their server side's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scripts.benchmark.process_cpu import Processes
from scripts.benchmark.scenario import Sample, Window, server_meter

if TYPE_CHECKING:
    from scripts.benchmark.environment import Environment

__all__ = ["Operation", "Repeated", "repeating"]

Operation = Callable[[], Awaitable[float]]
"""Runs once and returns its figure in seconds; raises when the operation failed."""


@dataclass(frozen=True)
class Repeated:
    """`operation`, again and again: through the warm-up, then at least once and on
    until the window ends. Its figures are the sample's latencies."""

    operation: Operation

    async def measure(self, concurrency: int, window: Window) -> Sample:
        """Warm up, then measure for `window.duration` seconds (at least one operation)."""
        end_warmup = time.perf_counter() + window.warmup
        while time.perf_counter() < end_warmup:
            await self.operation()
        sample = Sample()
        stop = server_meter(Processes.this_process()).start()
        start = time.perf_counter()
        while True:
            sample.latencies.append(await self.operation())
            if time.perf_counter() - start >= window.duration:
                break
        sample.elapsed = time.perf_counter() - start
        sample.cpu = stop()
        return sample


def repeating(operation: Operation) -> Callable[[Environment], Awaitable[Repeated]]:
    """The setup of a scenario that repeats `operation` and needs nothing else."""

    async def setup(_env: Environment) -> Repeated:
        return Repeated(operation)

    return setup
