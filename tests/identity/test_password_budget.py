"""The password-hashing budget: CPU time, sized from the hashes really served.

The decisions are checked on a clock the test moves, with costs the test reports; the
behaviour on a busy machine is checked on a real identity started beside busy processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider

from scripts.nats_process import NatsProcess
from services.identity.passwords import Busy, HashBudget, HashCost
from tests.identity.conftest import DEPLOYED_HASHING, running_identity
from tests.services.rich_errors import rich_error


class _Monotonic:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _admitted(budget: HashBudget, asked: int) -> int:
    """How many of `asked` hashes asked at one instant the budget lets in."""
    admitted = 0
    for _ in range(asked):
        with contextlib.suppress(Busy):
            budget.reserve()
            admitted += 1
    return admitted


def test_a_pessimistic_first_sample_is_corrected_by_the_hashes_served() -> None:
    cost = HashCost()
    cost.record(0.5)  # the first hash, measured while the machine was busy
    clock = _Monotonic()
    budget = HashBudget(0.5, cost, monotonic=clock)
    # Half a core at 0.5 s a hash: one now, then one per second, within the 2 s wait.
    assert _admitted(budget, 20) == 3
    with pytest.raises(Busy) as busy:
        budget.reserve()
    assert busy.value.retry_after == 3.0

    for _ in range(5):
        cost.record(0.025)  # the hashes served since cost 25 ms of CPU each
    clock.now += 10
    assert budget.hashes_per_second == 20
    assert _admitted(budget, 20) == 20


def test_the_cost_follows_the_low_end_of_the_latest_hashes() -> None:
    cost = HashCost(window=8)
    for sample in (0.030, 0.025, 0.090, 0.026, 0.031, 0.400, 0.027, 0.028):
        cost.record(sample)
    assert cost.seconds == 0.026  # stray slow samples do not move it
    for _ in range(8):
        cost.record(0.050)  # a slower host: followed within a window
    assert cost.seconds == 0.050


def test_hashing_never_takes_more_than_its_share() -> None:
    cost = HashCost()
    cost.record(0.025)
    clock = _Monotonic()
    budget = HashBudget(0.5, cost, monotonic=clock)
    end = clock.now + 100
    starts = []
    while clock.now < end:  # callers ask every 10 ms, far above the rate
        with contextlib.suppress(Busy):
            starts.append(budget.reserve().start_at)
        clock.now += 0.01
    # Half a core for 100 s is 50 CPU-seconds: 2000 hashes, plus one second's burst.
    assert 2000 <= sum(start < end for start in starts) <= 2020
    # Those let in beyond it wait their turn, at most 2 s.
    assert max(starts) <= end + 2


_BUSY = "import sys; sys.stdout.write('busy'); sys.stdout.flush()\nwhile True: pass"


@contextlib.contextmanager
def _busy_processes(count: int) -> Iterator[None]:
    """`count` processes spinning on the CPU, each already spinning on entry."""
    hogs = [
        subprocess.Popen([sys.executable, "-I", "-S", "-c", _BUSY], stdout=subprocess.PIPE)
        for _ in range(count)
    ]
    try:
        for hog in hogs:
            assert hog.stdout is not None
            assert hog.stdout.read(4) == b"busy"
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
            if hog.stdout is not None:
                hog.stdout.close()


async def test_sign_ups_of_an_identity_started_on_a_busy_machine_are_not_refused(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    async with contextlib.AsyncExitStack() as stack:
        # Eight busy processes a core made one hash's wall time 10-17 times its CPU
        # time here: the measurement a wall-clock budget was sized from.
        with _busy_processes(8 * (os.cpu_count() or 1)):
            identity = await stack.enter_async_context(
                running_identity(
                    url,
                    tmp_path,
                    tracer_provider,
                    nats_server.url,
                    password_hash_cores=0.5,
                    **DEPLOYED_HASHING,
                )
            )
        emails = iter(f"busy{n}@example.com" for n in range(20))

        async def sign_up_in_turn() -> list[str]:
            outcomes = []
            for email in emails:
                try:
                    await identity.register(email)
                    outcomes.append("OK")
                except grpc.aio.AioRpcError as error:
                    outcomes.append(rich_error(error).info.reason)
            return outcomes

        callers = await asyncio.gather(*(sign_up_in_turn() for _ in range(4)))
    assert sorted(outcome for caller in callers for outcome in caller) == ["OK"] * 20


async def test_calls_past_the_budget_are_refused_with_a_time_to_retry(
    tmp_path: Path, tracer_provider: TracerProvider, nats_server: NatsProcess
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    # A thousandth of a core: after one hash, the next waits far longer than 2 s.
    async with running_identity(
        url,
        tmp_path,
        tracer_provider,
        nats_server.url,
        password_hash_cores=0.001,
        **DEPLOYED_HASHING,
    ) as identity:
        await identity.register("first@example.com")
        with pytest.raises(grpc.aio.AioRpcError) as signing_up:
            await identity.register("second@example.com")
        with pytest.raises(grpc.aio.AioRpcError) as signing_in:
            await identity.login("first@example.com")
        refused = [rich_error(signing_up.value), rich_error(signing_in.value)]

    for error in refused:
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "RATE_LIMITED",
        )
        assert error.retry_delay is not None
        assert error.retry_delay > 2
