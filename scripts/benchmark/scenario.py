"""What a bench scenario is: a name, the ceiling it is compared to, and how to set it up.

`setup` starts what the scenario needs through the `Environment` and returns a workload:
a `ClosedLoop` of async calls that the load generator drives, or a `SelfTimed` workload
that measures its own operations (a raw `sqlite3` write path has no call to await).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scripts.benchmark.environment import Environment

__all__ = ["Call", "ClosedLoop", "Sample", "Scenario", "SelfTimed", "Window", "Workload"]

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

    @property
    def is_ceiling(self) -> bool:
        """Whether this is a bare ceiling that others are compared with."""
        return self.ceiling is None
