"""What a bench scenario is: a name, the ceiling it is compared to, and how to set it up.

`setup` starts what the scenario needs through the `Environment` and returns a workload:
a `ClosedLoop` of async calls that the load generator drives, or a `SelfTimed` workload
that measures its own operations (a raw `sqlite3` write path has no call to await).

A scenario is compared with a ceiling, or held to a `Target` (a bound the design sets:
how long a stop may take, how long a scan may hold the event loop), or both. Targets
are printed beside the figure; the bench reports them and never fails on them, since a
busy machine moves every figure.

Every workload also says which processes serve it (`ClosedLoop.server`, or the parts a
`SelfTimed` workload reads into `Sample.cpu`), so the bench reports the server side's
CPU time per call beside the bare echo's: for the gRPC paths the service's process with
its children (the outbox relay), plus the NATS server where publishing is part of the
path; for what runs in the bench process itself, that process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from scripts.benchmark.process_cpu import CpuMeter, CpuSource, Processes

if TYPE_CHECKING:
    from scripts.benchmark.environment import Environment

__all__ = [
    "LOAD_GENERATOR",
    "SERVER",
    "Call",
    "ClosedLoop",
    "Sample",
    "Scenario",
    "SelfTimed",
    "Target",
    "Window",
    "Workload",
    "server_meter",
]

SERVER = "server"
"""The part of `Sample.cpu` that the CPU per call is taken from: what serves the path."""
LOAD_GENERATOR = "load generator"
"""The bench process driving a `ClosedLoop`, measured beside its server."""

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
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each part used in the window: `SERVER`, the processes that serve the
    path; `LOAD_GENERATOR`, the bench process driving it; any other part the workload
    names (a database server, the whole machine)."""


def server_meter(server: Processes, beside: Mapping[str, CpuSource] | None = None) -> CpuMeter:
    """A meter of `server` as the `SERVER` part, and of the parts `beside` it."""
    return CpuMeter({SERVER: server, **(beside or {})})


@dataclass(frozen=True)
class ClosedLoop:
    """Driven by the load generator: worker `i` repeatedly awaits `calls[i % len(calls)]`.

    One call per client channel, so workers spread over the channels.
    """

    calls: Sequence[Call]
    server: Processes | None = None
    """The processes serving the calls, whose CPU time per call is reported; None
    reports none."""
    beside: Mapping[str, CpuSource] = field(default_factory=dict)
    """Other parts to read over the window, by name (a database server, the machine):
    reported as the cores each kept busy."""


class SelfTimed(Protocol):
    """A workload that runs and times its own operations at the given concurrency, and
    reads the CPU time of what serves them into `Sample.cpu` over the same window."""

    async def measure(self, concurrency: int, window: Window) -> Sample:
        """Warm up, then measure for `window.duration` seconds."""
        ...


Workload = ClosedLoop | SelfTimed


@dataclass(frozen=True)
class Target:
    """A bound on one figure of a scenario: its p50 or p99 in milliseconds, its p50
    relative to its `latency_versus` scenario's, its server-side CPU time per call
    relative to the echo's, or its throughput relative to its ceiling's (`ratio`)."""

    figure: Literal["p50", "p99", "p50 ratio", "cpu vs echo", "ratio"]
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
        unit = {"p50 ratio": "", "cpu vs echo": "x", "ratio": "x"}.get(self.figure, " ms")
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
    opt_in: bool = False
    """Runs only when named (`scripts/bench --only`): slow, or needs a server the
    machine may not have (PostgreSQL)."""

    @property
    def is_ceiling(self) -> bool:
        """Whether this is a bare ceiling: compared with nothing and held to no target."""
        return self.ceiling is None and self.target is None
