"""Closed-loop load: `concurrency` coroutines, each awaiting one call after another.

Every worker runs through the warm-up and the measured window without pause; an
operation belongs to the window in which it completes. Failed operations are counted
by kind and never as throughput or latency. The workload's server, the load generator
(this process) and any part beside them are read for CPU time as the window opens and
as it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
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


# A window with no successful operation says nothing, so one stays open past its duration
# until one succeeds (a throttled Login on a loaded machine took longer than a short
# window; sign-ins refused RESOURCE_EXHAUSTED for a moment left a window of errors only),
# up to this many times its duration. Failures in the longer window still count.
_LONGEST_WINDOW = 20


async def drive(workload: ClosedLoop, concurrency: int, window: Window) -> Sample:
    """Run `workload` with `concurrency` workers through `window`; what the window saw.

    The window closes at its end, or at the first success after it when none came
    before; `Sample.elapsed` is how long it really was open.
    """
    clock = time.perf_counter
    measure_from = clock() + window.warmup
    measure_until = measure_from + window.duration
    give_up_at = measure_from + window.duration * _LONGEST_WINDOW
    sample = Sample()
    latencies = sample.latencies
    errors = sample.errors
    closed = asyncio.Event()
    closed_at = measure_until

    def close(at: float) -> None:
        nonlocal closed_at
        if not closed.is_set():
            closed_at = at
            closed.set()

    async def worker(call: Call) -> None:
        while not closed.is_set():
            began = clock()
            failure: str | None = None
            try:
                await call()
            except Exception as error:  # whatever the operation raised, it failed
                failure = error_kind(error)
            ended = clock()
            if closed.is_set():
                return
            if ended < measure_from:
                continue
            if ended >= measure_until and latencies:
                close(measure_until)
                return
            if ended >= give_up_at:
                close(give_up_at)
                return
            if failure is None:
                latencies.append(ended - began)
                if ended >= measure_until:
                    close(ended)  # the first success of a window that had none
            else:
                errors[failure] += 1

    async def closer() -> None:
        await asyncio.sleep(max(0.0, measure_until - clock()))
        if latencies:
            close(measure_until)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), max(0.0, give_up_at - clock()))
        close(give_up_at)

    async def meter(meter: CpuMeter) -> None:
        await asyncio.sleep(max(0.0, measure_from - clock()))
        stop = meter.start()
        await closed.wait()
        sample.cpu = stop()

    meters = []
    if workload.server is not None:
        load_generator = {LOAD_GENERATOR: Processes.this_process(), **workload.beside}
        meters.append(meter(server_meter(workload.server, load_generator)))
    calls = workload.calls
    await asyncio.gather(
        closer(), *meters, *(worker(calls[index % len(calls)]) for index in range(concurrency))
    )
    sample.elapsed = closed_at - measure_from
    return sample
