"""A service's outbox relay in a child process of its own, woken through a pipe.

Why a process: publishing costs CPU per event (building the message, nats-py's
publish and flush, reading the acknowledgement), and in the service's own process that
CPU competes with its RPCs for one interpreter lock. Measured on the wallet, the relay
took about a quarter of the process's time under load; in a child process it runs on
another core. Nothing is lost by moving it: the outbox is in the database, which the
child opens itself, so what the relay does is unchanged (see `OutboxRelay`).

The parent (`RelayProcess`) keeps the write end of a pipe. After a transaction that
recorded events commits, it writes a byte, so the child publishes at once instead of
waiting for its poll. The pipe also ties the child's life to the parent's: when the
parent closes it on shutdown, or dies, the child reads end-of-file, flushes what it
owes and exits. A second pipe runs the other way: the child writes to it once it is
connected to NATS with its stream declared, which is when `ready` is set, so the
service reports SERVING only when a commit's events really flow; after that, every
`report_seconds` that something changed, it writes its running totals of events
published and failed and whether it holds the relay lease, which the parent turns into
its metrics (totals, not increments: a report lost to a dying child loses no count the
next child's reports would need). The child runs in its
own session, so a Ctrl-C in the terminal stops the service, which then stops its relay,
rather than both at once. If the child exits on its own, the parent starts a new one
after a growing pause.

Wake-ups are throttled to one per `wake_interval_seconds` (20 ms): the first commit
after a quiet spell wakes the child at once, and commits during the interval share one
wake-up at its end. Why: under load a wake-up per commit made the child publish one
event at a time, and each of those bursts (a scan, a publish, NATS's own work, the
acknowledgement) competed with the service's next request for the machine's cores.
Measured on the wallet (three interleaved runs each), a 5 ms throttle took
CreateTransfer from 0.28-0.32x to 0.32-0.36x of the echo at concurrency 1 and from
0.24x to 0.25-0.28x at 32. At 5 ms the child still published only ~3 events per
wake-up at 600 transfers/s, and a batch that small costs JetStream and nats-py several
times per event what a batch of ten does (standalone: 432 us per event alone, 91 in
tens); 20 ms took the server-side CPU per transfer at 32 concurrent from 1,021 to
895 us (bench, three rounds each). The price is at most 20 ms more between a commit
and its publication under sustained load; a commit after a quiet spell still wakes
the child at once (at 5 ms, commit-to-handler at a steady 200 events/s measured p50
3.5-4.4 / p99 7-8 ms, against p50 1.3 / p99 5 ms unthrottled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.eventbus.outbox import Outbox
from services.runtime.tasks import stop_task

if TYPE_CHECKING:
    from services.eventbus.relay import Counted

__all__ = ["RelayCounts", "RelayProcess"]

_log = logging.getLogger(__name__)

# What the child learns from its environment (see `services.eventbus.relay_child`).
SERVICE = "SUPERAPP_RELAY_SERVICE"
DATABASE_URL = "SUPERAPP_RELAY_DATABASE_URL"
NATS_URL = "SUPERAPP_RELAY_NATS_URL"
WAKE_FD = "SUPERAPP_RELAY_WAKE_FD"
STATUS_FD = "SUPERAPP_RELAY_STATUS_FD"
REPORT_SECONDS = "SUPERAPP_RELAY_REPORT_SECONDS"
READY = b"R\n"
"""What the child writes to its status pipe once it relays."""
LOG_LEVEL = "SUPERAPP_RELAY_LOG_LEVEL"
STREAM_REPLICAS = "SUPERAPP_RELAY_STREAM_REPLICAS"
LEASE_SECONDS = "SUPERAPP_RELAY_LEASE_SECONDS"


@dataclass(frozen=True, slots=True)
class RelayCounts:
    """What a child reports of itself: running totals since it started."""

    published: int = 0
    failed: int = 0
    publishing: bool = False

    def line(self) -> bytes:
        """The status-pipe line for these counts."""
        return b"C %d %d %d\n" % (self.published, self.failed, self.publishing)

    @classmethod
    def parse(cls, line: bytes) -> RelayCounts | None:
        """The counts in a status line (without its newline), or None if it has none."""
        fields = line.split()
        if len(fields) != 4 or fields[0] != b"C":
            return None
        published, failed, publishing = (int(field) for field in fields[1:])
        return cls(published, failed, bool(publishing))


class RelayProcess:
    """Runs `service`'s relay in a child process, wakes it on commits, restarts it if
    it dies, and stops it (after it flushed) on `stop()`."""

    def __init__(
        self,
        service: str,
        *,
        database_url: str,
        nats_url: str,
        outbox: Outbox,
        stream_replicas: int = 1,
        lease_seconds: float = 10.0,
        check_seconds: float = 0.2,
        restart_seconds: tuple[float, float] = (0.5, 30.0),
        stop_seconds: float = 3.0,
        wake_interval_seconds: float = 0.02,
        report_seconds: float = 1.0,
        counted: Counted | None = None,
    ) -> None:
        """`counted` hears how many events the child published and failed to publish
        since its last report (see the module's docstring)."""
        self._service = service
        # The URL travels in the child's environment, never on its command line (ps).
        self._environment = {
            SERVICE: service,
            DATABASE_URL: database_url,
            NATS_URL: nats_url,
            STREAM_REPLICAS: str(stream_replicas),
            LEASE_SECONDS: str(lease_seconds),
            REPORT_SECONDS: str(report_seconds),
            # The level this process was configured with, whichever setting said so.
            LOG_LEVEL: logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        }
        self._check = check_seconds
        self._restart_first, self._restart_most = restart_seconds
        self._stop_seconds = stop_seconds
        self._wake_interval = wake_interval_seconds
        self._last_wake = -float("inf")
        self._wake_due: asyncio.TimerHandle | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._wake_fd: int | None = None
        self._status_fd: int | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once a child has reported that it relays (connected, stream declared).
        It stays set when a child is replaced: the outbox keeps events meanwhile."""
        self.starts = 0
        """Children started so far (1 unless one had to be replaced)."""
        self.published = 0
        """Events the children reported acknowledged by JetStream, all of them together."""
        self.failed = 0
        """Events whose publication failed, as the children reported."""
        self.publishing = False
        """Whether the running child holds the relay lease, as it last reported."""
        self._counted = counted
        self._child = RelayCounts()
        self._status_buffer = b""
        outbox.on_wake(self.wake)

    @property
    def pid(self) -> int | None:
        """The running child's process id, if there is one."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child and watch over it."""
        self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="relay-supervisor")

    def wake(self) -> None:
        """Tell the child that events were committed: at once, or together with the
        other commits of the current wake interval at its end."""
        if self._wake_due is not None:
            return  # a wake-up is already due; it covers this commit too
        loop = asyncio.get_running_loop()
        due = self._last_wake + self._wake_interval
        if loop.time() >= due:
            self._write_wake()
        else:
            self._wake_due = loop.call_at(due, self._write_wake)

    def _write_wake(self) -> None:
        self._wake_due = None
        self._last_wake = asyncio.get_running_loop().time()
        if self._wake_fd is None:
            return
        # A full pipe already holds a wake-up the child has not read; a broken one means
        # the child is gone and its successor scans the outbox from the start.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._wake_fd, b"\x01")

    async def stop(self) -> None:
        """Release the child (it flushes and exits), killing it if it does not in time."""
        if self._supervisor is not None:
            await stop_task(self._supervisor, within=1.0)
            self._supervisor = None
        process = self._process
        self._release_pipe()
        self._process = None
        if process is None:
            return
        # Inside the service's own bound on each release (GrpcService.stop) unless the
        # bus spent it on a stuck consumer first; then that cancels us, and we kill.
        try:
            await asyncio.to_thread(process.wait, self._stop_seconds)
        except subprocess.TimeoutExpired:
            _log.warning("the %s relay did not stop in time; killing it", self._service)
            process.kill()
            await asyncio.to_thread(process.wait)
        except asyncio.CancelledError:
            process.kill()  # whoever stops us gave up waiting: leave nothing behind
            raise

    def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        status_read, status_write = os.pipe()
        os.set_blocking(write_end, False)
        os.set_blocking(status_read, False)
        try:
            # Popen, not the event loop's subprocess API: CPython spawns without
            # running fork handlers, which gRPC's threads object to.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "services.eventbus.relay_child"],
                env={
                    **os.environ,
                    **self._environment,
                    WAKE_FD: str(read_end),
                    STATUS_FD: str(status_write),
                },
                pass_fds=(read_end, status_write),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            os.close(status_read)
            raise
        finally:
            os.close(read_end)
            os.close(status_write)
        self._wake_fd = write_end
        self._status_fd = status_read
        asyncio.get_running_loop().add_reader(status_read, self._read_status)
        self._started = time.monotonic()
        self.starts += 1
        _log.info(
            "started the %s outbox relay (pid %d)",
            self._service,
            self._process.pid,
            extra={"pid": self._process.pid},
        )

    def _read_status(self) -> None:
        fd = self._status_fd
        if fd is None:
            return
        try:
            said = os.read(fd, 4096)
        except BlockingIOError:
            return
        if not said:  # the child closed its end: it exited
            self._release_status()
            return
        *lines, self._status_buffer = (self._status_buffer + said).split(b"\n")
        for line in lines:
            self._heard(line)

    def _heard(self, line: bytes) -> None:
        if line + b"\n" == READY:
            if not self.ready.is_set():
                _log.info("the %s outbox relay is connected and relaying", self._service)
            self.ready.set()
            return
        counts = RelayCounts.parse(line)
        if counts is None:
            return
        published = counts.published - self._child.published
        failed = counts.failed - self._child.failed
        self._child = counts
        self.publishing = counts.publishing
        self.published += published
        self.failed += failed
        if self._counted is not None:
            self._counted(published, failed)

    def _release_status(self) -> None:
        if self._status_fd is not None:
            asyncio.get_running_loop().remove_reader(self._status_fd)
            os.close(self._status_fd)
            self._status_fd = None
        # The next child counts from zero, and holds no lease until it says so.
        self._status_buffer = b""
        self._child = RelayCounts()
        self.publishing = False

    def _release_pipe(self) -> None:
        if self._wake_due is not None:
            # The child publishes what is committed before it exits (OutboxRelay.stop).
            self._wake_due.cancel()
            self._wake_due = None
        if self._wake_fd is not None:
            os.close(self._wake_fd)
            self._wake_fd = None
        self._release_status()

    async def _supervise(self) -> None:
        pause = self._restart_first
        while True:
            await asyncio.sleep(self._check)
            process = self._process
            if process is not None:
                if process.poll() is None:
                    continue
                if time.monotonic() - self._started >= self._restart_most:
                    pause = self._restart_first  # it ran well; this failure is a new one
                _log.error(
                    "the %s outbox relay exited with %s; starting another in %.1fs",
                    self._service,
                    process.returncode,
                    pause,
                    extra={"returncode": process.returncode},
                )
                self._release_pipe()
                self._process = None
            # No child: it exited, or the last attempt to start one failed.
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._restart_most)
            try:
                self._spawn()
            except OSError:
                _log.exception("cannot start the %s outbox relay", self._service)
