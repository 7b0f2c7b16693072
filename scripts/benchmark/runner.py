"""One bench run: set every scenario up, then measure them side by side per concurrency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from scripts.benchmark.environment import Environment
from scripts.benchmark.load_generator import drive
from scripts.benchmark.scenario import ClosedLoop, Sample, Scenario, Window, Workload

__all__ = ["Failure", "Measurement", "Plan", "RunResult", "run_benchmark"]


@dataclass(frozen=True)
class Plan:
    """What to measure and how."""

    concurrencies: Sequence[int]
    window: Window
    channels: int = 1
    """Client channels (connections) per server the workers are spread over."""
    rounds: int = 1
    """Times each concurrency is measured, every scenario once per round, in turn."""


@dataclass(frozen=True)
class Measurement:
    """One scenario at one concurrency, in one round."""

    scenario: Scenario
    concurrency: int
    sample: Sample
    round: int = 0


@dataclass(frozen=True)
class Failure:
    """A scenario that could not be set up or measured, and why."""

    scenario: str
    stage: str
    reason: str


@dataclass
class RunResult:
    """Everything one run measured, and what it could not."""

    measurements: list[Measurement] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


async def _measure(workload: Workload, concurrency: int, window: Window) -> Sample:
    if isinstance(workload, ClosedLoop):
        return await drive(workload, concurrency, window)
    return await workload.measure(concurrency, window)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


async def run_benchmark(
    scenarios: Sequence[Scenario],
    plan: Plan,
    work_dir: Path,
    progress: Callable[[str], None] = lambda _line: None,
) -> RunResult:
    """Measure `scenarios` at every concurrency of `plan`; stop everything before returning.

    A scenario that fails to set up is reported and skipped; the others still run.
    Ceilings and the paths compared with them are measured back to back at each
    concurrency, so a ratio compares like with like; with several rounds they take
    turns (every other round in reverse order), so a slow patch of the machine lands on
    both sides of a ratio instead of on one.
    """
    result = RunResult()
    async with AsyncExitStack() as stack:
        env = Environment(work_dir, stack, plan.channels)
        workloads: dict[str, Workload] = {}
        for scenario in scenarios:
            progress(f"setting up {scenario.name}")
            try:
                workloads[scenario.name] = await scenario.setup(env)
            except Exception as error:  # reported in the output; the rest of the run goes on
                result.failures.append(Failure(scenario.name, "setup", _reason(error)))
        for concurrency in plan.concurrencies:
            for round_ in range(plan.rounds):
                # Every other round in reverse: a scenario's place in the round (just
                # after the echo, say, or after a write-heavy one) moves its figures by
                # up to 10% here, so each side of a ratio takes both places.
                for scenario in scenarios if round_ % 2 == 0 else scenarios[::-1]:
                    workload = workloads.get(scenario.name)
                    if workload is None:
                        continue
                    of = f" (round {round_ + 1}/{plan.rounds})" if plan.rounds > 1 else ""
                    progress(f"measuring {scenario.name} at concurrency {concurrency}{of}")
                    try:
                        sample = await _measure(workload, concurrency, plan.window)
                    except Exception as error:  # same: report it and measure the others
                        result.failures.append(Failure(scenario.name, "measure", _reason(error)))
                        workloads.pop(scenario.name)
                        continue
                    result.measurements.append(Measurement(scenario, concurrency, sample, round_))
        progress("stopping servers")
    return result
