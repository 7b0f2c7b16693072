"""CPU time spent on a path, read from the processes that serve it: what a call costs on
the server side, a figure that travels to other machines where throughput does not.

A `Processes` set names its members by process id: each of `trees` counts with all of
its live descendants (a service with its outbox relay child), each of `alone` by itself
(the bench process, whose children are the servers of every scenario). A `CpuMeter`
reads its parts when a window opens and again when it closes; `Machine` is every core's
busy time, for what the cores as a whole had left.

Each process's own time comes from its CPU clock (`clock_gettime` on the process's
clock id: every thread, alive or ended, in nanoseconds), where /proc/<pid>/stat's
utime+stime counts in 10 ms ticks: too coarse for a window of a few hundred calls. The
children a member has reaped count through that file's cutime+cstime, so a child that
exits inside the window keeps its time; a process that appears inside the window counts
whole, and one that vanished without a counted parent to reap it loses its last share.
`ProcessesFound` is a set found by any rule at each read (PostgreSQL's processes that
serve one run's databases).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

__all__ = [
    "CpuMeter",
    "CpuSource",
    "Machine",
    "Processes",
    "ProcessesFound",
    "children",
    "parent",
    "process_cpu_seconds",
]

_TICK_SECONDS = 1 / os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


class _Reading(NamedTuple):
    cpu: float
    """Seconds: the process's own CPU time plus that of the children it has reaped."""
    parent: int


def _clock_id(pid: int) -> int:
    # glibc's clock_getcpuclockid: the process-wide CPUCLOCK_SCHED clock of `pid`.
    return (~pid << 3) | 2


def _read(pid: int, *, reaped_too: bool = True) -> _Reading | None:
    """`pid`'s CPU time so far (with its reaped children's unless not `reaped_too`), or
    None when it is gone."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: count from its end.
    fields = stat.rsplit(")", 1)[1].split()
    parent = int(fields[1])
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    reaped = (cutime + cstime) * _TICK_SECONDS if reaped_too else 0.0
    try:
        own = time.clock_gettime(_clock_id(pid))
    except OSError:  # ended between the two reads: its last ticks will do
        own = (utime + stime) * _TICK_SECONDS
    return _Reading(own + reaped, parent)


def parent(pid: int) -> int | None:
    """The parent process of `pid`, or None when it is gone."""
    reading = _read(pid)
    return None if reading is None else reading.parent


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds `pid` has used (and the children it reaped), or None when it is gone."""
    reading = _read(pid)
    return None if reading is None else reading.cpu


def children(pid: int) -> list[int]:
    """The live children of `pid` (none when it is gone)."""
    found: list[int] = []
    try:
        threads = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return found
    for thread in threads:
        try:
            found += [int(child) for child in (thread / "children").read_text().split()]
        except OSError:
            continue
    return found


def _with_descendants(root: int) -> list[int]:
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children(pid)
    return found


class CpuSource(Protocol):
    """Something whose CPU time can be read over a window."""

    def start(self) -> Callable[[], float]:
        """Read now; the function returned reads again and returns the CPU seconds used
        in between."""
        ...


@dataclass(frozen=True)
class Processes:
    """Processes whose CPU time is summed: each of `trees` with its live descendants
    (found at every read), each of `alone` without them."""

    trees: Sequence[int] = ()
    alone: Sequence[int] = ()

    @classmethod
    def this_process(cls) -> Processes:
        """The bench process alone: where in-process scenarios and the load generator run."""
        return cls(alone=(os.getpid(),))

    def __or__(self, other: Processes) -> Processes:
        return Processes((*self.trees, *other.trees), (*self.alone, *other.alone))

    def pids(self) -> list[int]:
        """Every member now: the roots, their live descendants, the lone processes."""
        members = [pid for root in self.trees for pid in _with_descendants(root)]
        return list(dict.fromkeys([*members, *self.alone]))

    def start(self) -> Callable[[], float]:
        return ProcessesFound(self.pids).start()


@dataclass(frozen=True)
class ProcessesFound:
    """The processes `find` returns, found again at every read.

    Without `reaped_too`, the children the members reaped do not count: for a parent
    that also reaps children which are not members (a shared PostgreSQL server's
    postmaster reaps every other database's backends too).
    """

    find: Callable[[], Sequence[int]]
    reaped_too: bool = True

    def _snapshot(self) -> dict[int, _Reading]:
        readings = {pid: _read(pid, reaped_too=self.reaped_too) for pid in self.find()}
        return {pid: reading for pid, reading in readings.items() if reading is not None}

    def start(self) -> Callable[[], float]:
        before = self._snapshot()

        def stop() -> float:
            return _used(before, self._snapshot(), reaped_too=self.reaped_too)

        return stop


def _used(
    before: Mapping[int, _Reading], after: Mapping[int, _Reading], *, reaped_too: bool
) -> float:
    used = sum(now.cpu - (before[pid].cpu if pid in before else 0.0) for pid, now in after.items())
    if reaped_too:
        # A member that ended and was reaped by another member: its whole time moved
        # into the parent's reaped share, so what it had used before comes off again.
        used -= sum(
            then.cpu for pid, then in before.items() if pid not in after and then.parent in after
        )
    return used


@dataclass(frozen=True)
class Machine:
    """Busy time of every core (user, nice, system, irq, softirq, steal from /proc/stat),
    whoever used it: what other work on a shared machine took shows here too."""

    def start(self) -> Callable[[], float]:
        before = _busy_seconds()
        return lambda: _busy_seconds() - before


def _busy_seconds() -> float:
    fields = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) * _TICK_SECONDS


@dataclass(frozen=True)
class CpuMeter:
    """Named parts (`server`, `load generator`, `postgresql`, ...) read over one window."""

    parts: Mapping[str, CpuSource]

    def start(self) -> Callable[[], dict[str, float]]:
        """Read every part now; the function returned gives each part's CPU seconds since."""
        stops = {name: source.start() for name, source in self.parts.items()}
        return lambda: {name: stop() for name, stop in stops.items()}
