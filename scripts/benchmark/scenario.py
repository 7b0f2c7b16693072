"""What a bench scenario is: a name, the ceiling it is compared to, and how to set it up.

`setup` starts what the scenario needs through the `Environment` and returns a workload:
a `ClosedLoop` of async calls that the load generator drives, or a `SelfTimed` workload
that measures its own operations (a raw `sqlite3` write path has no call to await).

A scenario is compared with a ceiling, or held to a `Target` (a bound the design sets:
how long a stop may take, how long a scan may hold the event loop), or both. Targets
are printed beside the figure; the bench reports them and never fails on them, since a
busy machine moves every figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from scripts.benchmark.environment import Environment

__all__ = [
    "Call",
    "ClosedLoop",
    "Sample",
    "Scenario",
    "SelfTimed",
    "Target",
    "Window",
    "Workload",
]

Call = Callable[[], Awaitable[object]]
"""One operation; raising means the operation failed and it is counted as an error."""


@dataclass(frozen=True)
class Window:
    """How long to warm up, then how long to measure, in seconds."""

    warmup: float
    duration: float


@dataclass
class Sample:
    """What one measured window produced."""

    latencies: list[float] = field(default_factory=list)
    """Seconds per successful operation that completed inside the window."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed operations inside the window, by kind (gRPC status code or exception type)."""
    elapsed: float = 0.0
    """Length of the measured window in seconds."""


@dataclass(frozen=True)
class ClosedLoop:
    """Driven by the load generator: worker `i` repeatedly awaits `calls[i % len(calls)]`.

    One call per client channel, so workers spread over the channels.
    """

    calls: Sequence[Call]


class SelfTimed(Protocol):
    """A workload that runs and times its own operations at the given concurrency."""

    async def measure(self, concurrency: int, window: Window) -> Sample:
        """Warm up, then measure for `window.duration` seconds."""
        ...


Workload = ClosedLoop | SelfTimed


@dataclass(frozen=True)
class Target:
    """A bound on one figure of a scenario: its p50 or p99 in milliseconds, or its p50
    relative to its `latency_versus` scenario's."""

    figure: Literal["p50", "p99", "p50 ratio"]
    at_least: float | None = None
    at_most: float | None = None
    source: str = ""
    """Where the bound comes from, shown beside it (e.g. "5x the 2 ms budget")."""

    def __post_init__(self) -> None:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a target needs at_least, at_most or both")

    def met_by(self, value: float) -> bool:
        """Whether `value` of the figure is within the bound."""
        low = self.at_least is None or value >= self.at_least
        return low and (self.at_most is None or value <= self.at_most)

    def describe(self) -> str:
        """The bound as the table prints it, e.g. `p99 <= 10 ms (5x the 2 ms budget)`."""
        unit = "" if self.figure == "p50 ratio" else " ms"
        if self.at_least is not None and self.at_most is not None:
            bound = f"{self.at_least:g}-{self.at_most:g}{unit}"
        elif self.at_most is not None:
            bound = f"<= {self.at_most:g}{unit}"
        else:
            bound = f">= {self.at_least:g}{unit}"
        return f"{self.figure} {bound}" + (f" ({self.source})" if self.source else "")


@dataclass(frozen=True)
class Scenario:
    """One measured path, compared with its `ceiling` at the same concurrency."""

    name: str
    """Dotted name shown in the table, e.g. `wallet.Transfer`."""
    setup: Callable[[Environment], Awaitable[Workload]]
    """Starts what the scenario needs (servers, data) and returns its workload.

    Resources opened through the environment are released when the run ends.
    """
    ceiling: str | None = None
    """Name of the bare scenario this one is compared with; None for a ceiling itself."""
    latency_versus: str | None = None
    """Name of a scenario whose p50 latency this one's is compared with, where a target
    is set that way (SearchProducts within 3x GetProduct)."""
    target: Target | None = None
    """A bound the design sets on this scenario's figure, printed beside it."""

    @property
    def is_ceiling(self) -> bool:
        """Whether this is a bare ceiling: compared with nothing and held to no target."""
        return self.ceiling is None and self.target is None
