"""Closed-loop load: `concurrency` coroutines, each awaiting one call after another.

Every worker runs through the warm-up and the measured window without pause; an
operation belongs to the window in which it completes. Failed operations are counted
by kind and never as throughput or latency. The workload's server, the load generator
(this process) and any part beside them are read for CPU time as the window opens and
as it closes.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from scripts.benchmark.process_cpu import CpuMeter, Processes
from scripts.benchmark.scenario import (
    LOAD_GENERATOR,
    Call,
    ClosedLoop,
    Sample,
    Window,
    server_meter,
)

__all__ = ["drive", "error_kind"]


def error_kind(error: Exception) -> str:
    """A short label for a failed operation: the gRPC status code name, else the type."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name
    kind = getattr(error, "kind", None)  # e.g. the HTTP client's "HTTP_503"
    return kind if isinstance(kind, str) else type(error).__name__


async def drive(workload: ClosedLoop, concurrency: int, window: Window) -> Sample:
    """Run `workload` with `concurrency` workers through `window`; what the window saw."""
    clock = time.perf_counter
    measure_from = clock() + window.warmup
    measure_until = measure_from + window.duration
    sample = Sample(elapsed=window.duration)
    latencies = sample.latencies
    errors = sample.errors

    async def worker(call: Call) -> None:
        while True:
            began = clock()
            failure: str | None = None
            try:
                await call()
            except Exception as error:  # whatever the operation raised, it failed
                failure = error_kind(error)
            ended = clock()
            if ended >= measure_until:
                return
            if ended < measure_from:
                continue
            if failure is None:
                latencies.append(ended - began)
            else:
                errors[failure] += 1

    async def meter(meter: CpuMeter) -> None:
        await asyncio.sleep(max(0.0, measure_from - clock()))
        stop = meter.start()
        await asyncio.sleep(max(0.0, measure_until - clock()))
        sample.cpu = stop()

    meters = []
    if workload.server is not None:
        load_generator = {LOAD_GENERATOR: Processes.this_process(), **workload.beside}
        meters.append(meter(server_meter(workload.server, load_generator)))
    calls = workload.calls
    await asyncio.gather(
        *meters, *(worker(calls[index % len(calls)]) for index in range(concurrency))
    )
    return sample
