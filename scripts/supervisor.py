"""The local stack's processes, kept running: start, watch, restart with backoff, give up.

A process that exits while the stack runs is started again after a pause that grows
with each crash in a row (`RestartPolicy`), as a process manager or Kubernetes would,
and the rest of the stack keeps running: the BFF answers the routes that need the
missing service with 503 until it is back. A process that keeps crashing is not
restarted forever: after `max_crashes` within `window_seconds` the supervisor gives up
and the stack stops with a report quoting the process's last output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from scripts.child_processes import die_with_parent

__all__ = ["Child", "GaveUp", "ReadyCheck", "RestartPolicy", "stop_children"]

_TAIL_LINES = 20
_STOP_GRACE_SECONDS = 15.0
"""Per process; above the services' default 10 s drain so a clean stop is never cut short."""

ReadyCheck = Callable[[Callable[[str], None]], Awaitable[None]]
"""Completes once a process is ready; reports what it saw meanwhile through its argument."""


class GaveUp(Exception):
    """A process crashed too often; the message is the report to show."""


@dataclass(frozen=True)
class RestartPolicy:
    """When a crashed process is started again, and when the supervisor gives up."""

    first_delay_seconds: float = 0.25
    max_delay_seconds: float = 5.0
    window_seconds: float = 60.0
    max_crashes: int = 5
    """Crashes within `window_seconds` after which the process is not started again."""

    def delay(self, crashes_in_window: int) -> float:
        """The pause before the next start, doubling with each recent crash."""
        pause = self.first_delay_seconds * 2 ** max(0, crashes_in_window - 1)
        return float(min(self.max_delay_seconds, pause))


@dataclass
class Child:
    """One process of the stack, across its restarts, and its last lines of output."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_check: ReadyCheck
    sink: TextIO
    width: int
    cwd: Path
    note: str = ""
    """Said after the pid each time it starts, e.g. `starting on 127.0.0.1:7102`."""
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))
    pump: asyncio.Task[None] | None = None
    ready: bool = False
    last_state: str = "no answer yet"
    crashes: deque[float] = field(default_factory=deque)
    starts: int = 0

    @property
    def pid(self) -> int | None:
        """The running process's id."""
        return self.process.pid if self.process is not None else None

    async def launch(self) -> None:
        """Start the process and pass its output on, each line prefixed by the name."""
        self.ready = False
        self.last_state = "no answer yet"
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            env=dict(self.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=1 << 20,
            preexec_fn=die_with_parent(os.getpid()),
            # Its own process group: a terminal's Ctrl-C reaches only the launcher, which
            # then stops the processes one by one in reverse order.
            process_group=0,
        )
        self.starts += 1
        assert self.process.stdout is not None
        self.pump = asyncio.create_task(self._pump(self.process.stdout), name=f"{self.name}-log")
        print(f"stack: {self.name} pid {self.process.pid} {self.note}".rstrip(), file=sys.stderr)

    async def wait_ready(self) -> None:
        """Until the process reports ready (bound it with `asyncio.timeout`)."""

        def seen(state: str) -> None:
            self.last_state = state

        await self.ready_check(seen)
        self.ready = True

    async def wait_exit(self) -> int:
        """Until the process exits; its return code."""
        assert self.process is not None
        return await self.process.wait()

    def describe_exit(self) -> str:
        """'exited with code 1' or 'was killed by SIGKILL'."""
        code = self.process.returncode if self.process is not None else None
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    async def report(self, what: str) -> str:
        """`what` happened, with the process's last output."""
        await self._finish_log()
        lines = [f"stack: {self.name} {what}; its last output:"]
        lines += [f"    {line}" for line in self.tail] or ["    (nothing)"]
        return "\n".join(lines)

    async def keep_running(
        self, policy: RestartPolicy, startup_timeout: float, stop: asyncio.Event
    ) -> None:
        """Start the process again whenever it exits, until `stop`; raises GaveUp when
        it crashed `policy.max_crashes` times within `policy.window_seconds`.

        A restart that is not ready within `startup_timeout` is killed and counts as
        another crash.
        """
        while True:
            await self.wait_exit()
            if stop.is_set():
                return
            now = time.monotonic()
            self.crashes.append(now)
            while self.crashes and now - self.crashes[0] > policy.window_seconds:
                self.crashes.popleft()
            recent = len(self.crashes)
            if recent >= policy.max_crashes:
                raise GaveUp(
                    await self.report(
                        f"{self.describe_exit()}: {recent} crashes within "
                        f"{policy.window_seconds:g}s; giving up"
                    )
                )
            pause = policy.delay(recent)
            print(
                await self.report(
                    f"{self.describe_exit()}; starting it again in {pause:g}s "
                    f"(crash {recent} of {policy.max_crashes} allowed within "
                    f"{policy.window_seconds:g}s)"
                ),
                file=sys.stderr,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await stop.wait()
            if stop.is_set():
                return
            await self.launch()
            await self._wait_ready_again(startup_timeout)

    async def _wait_ready_again(self, startup_timeout: float) -> None:
        exited = asyncio.create_task(self.wait_exit())
        ready = asyncio.create_task(self.wait_ready())
        try:
            await asyncio.wait(
                {exited, ready}, timeout=startup_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
            exited.cancel()
        if self.ready:
            print(f"stack: {self.name} is ready again (pid {self.pid})", file=sys.stderr)
        elif self.process is not None and self.process.returncode is None:
            print(
                f"stack: {self.name} not ready {startup_timeout:g}s after its restart "
                f"({self.last_state}); killing it",
                file=sys.stderr,
            )
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        # Either way the loop in keep_running sees the exit, if there is one, next.

    async def stop(self, hurry: asyncio.Event) -> None:
        """SIGTERM, then SIGKILL if it outlives the grace or `hurry` is set."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            exited = asyncio.create_task(process.wait())
            hurried = asyncio.create_task(hurry.wait())
            await asyncio.wait(
                {exited, hurried}, timeout=_STOP_GRACE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            hurried.cancel()
            if not exited.done():
                print(f"stack: {self.name} did not stop in time; killing it", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await exited
        await self._finish_log()
        if self.pump is not None:
            self.pump.cancel()

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # readline has already dropped a line over the reader's limit
                raw = b"(an over-long line was dropped)"
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\n")
            self.tail.append(line)
            self.sink.write(f"{self.name:<{self.width}}| {line}\n")
            self.sink.flush()

    async def _finish_log(self) -> None:
        if self.pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.pump), 2.0)


async def stop_children(children: Sequence[Child], hurry: asyncio.Event) -> None:
    """Stop one by one in reverse start order."""
    for child in reversed(children):
        await child.stop(hurry)
