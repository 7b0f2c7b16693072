"""The outbox relay's child process: relay until the parent lets go, flush, exit.

Started by `RelayProcess` (see `services.eventbus.relay_process`, which explains why
the relay runs apart from its service); configured through its environment. It builds
only what relaying needs (database engine, NATS link, outbox, relay): not the service's
event bus with its consumer, nor Alembic or gRPC, whose imports had made the child
take ~1.9 s to start here, and 5-7 s on a loaded machine, before it could relay.
Once connected with its stream declared it says so on its status pipe, and the
service then reports SERVING; from then on it reports there what it published, for the
service's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData

from services.database.engine import Database
from services.eventbus.connection import NatsLink
from services.eventbus.contract import stream_of
from services.eventbus.outbox import Outbox
from services.eventbus.relay import OutboxRelay
from services.eventbus.relay_process import (
    DATABASE_URL,
    LEASE_SECONDS,
    LOG_LEVEL,
    NATS_URL,
    READY,
    REPORT_SECONDS,
    SERVICE,
    STATUS_FD,
    STREAM_REPLICAS,
    WAKE_FD,
    RelayCounts,
)
from services.eventbus.schema import EventTables
from services.runtime.clock import SystemClock
from services.runtime.logs import configure_logging
from services.runtime.tracing import tracer_provider_from_env

__all__ = ["main"]


class _StatusReports:
    """What the child tells its parent on the status pipe (see `relay_process`)."""

    def __init__(self, relay: OutboxRelay, status_fd: int) -> None:
        self._relay = relay
        self._fd = status_fd
        self._reported = RelayCounts()

    def _write(self, message: bytes) -> None:
        with contextlib.suppress(OSError):  # a parent that is gone has nobody to tell
            os.write(self._fd, message)

    def counts(self) -> None:
        """Report the relay's totals, if they changed since the last report."""
        relay = self._relay
        counts = RelayCounts(relay.published, relay.failed, relay.publishing)
        if counts != self._reported:
            self._reported = counts
            self._write(counts.line())

    async def run(self, every_seconds: float) -> None:
        """Say READY once relaying, then report the counts every `every_seconds`."""
        await self._relay.ready.wait()
        self._write(READY)
        while True:
            self.counts()
            await asyncio.sleep(every_seconds)


async def _relay_until_released(
    service: str,
    database_url: str,
    nats_url: str,
    pipes: tuple[int, int],
    tracer_provider: TracerProvider,
    stream_replicas: int,
    lease_seconds: float,
    report_seconds: float,
) -> None:
    wake_fd, status_fd = pipes
    database = Database.connect(database_url)
    clock = SystemClock()
    # The same columns as every service's own declaration of them.
    tables = EventTables(MetaData())
    outbox = Outbox(tables, f"superapp.{service}", clock)
    link = NatsLink(nats_url, f"superapp-{service}-relay")
    relay = OutboxRelay(
        database=database,
        tables=tables,
        outbox=outbox,
        link=link,
        stream=stream_of(service),
        tracer_provider=tracer_provider,
        clock=clock,
        stream_replicas=stream_replicas,
        lease_seconds=lease_seconds,
    )
    loop = asyncio.get_running_loop()
    released = asyncio.Event()

    def readable() -> None:
        try:
            woken = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if woken:
            outbox.wake()
        else:  # the parent closed the pipe, or died
            loop.remove_reader(wake_fd)
            released.set()

    os.set_blocking(wake_fd, False)
    loop.add_reader(wake_fd, readable)
    loop.add_signal_handler(signal.SIGTERM, released.set)
    link.start()
    relay.start()
    reports = _StatusReports(relay, status_fd)
    reporter = asyncio.create_task(reports.run(report_seconds), name="relay-status")
    try:
        await released.wait()
    finally:
        reporter.cancel()
        await relay.stop()
        reports.counts()  # what the last batches, and the drain, published
        await link.close()
        await database.dispose()
        os.close(status_fd)


def main(environment: Mapping[str, str] = os.environ) -> None:
    """The child's life: relay until the parent lets go, then flush and exit."""
    service = environment[SERVICE]
    configure_logging(f"{service}-relay", environment.get(LOG_LEVEL, "INFO"))
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    provider = tracer_provider_from_env(service)
    try:
        asyncio.run(
            _relay_until_released(
                service,
                environment[DATABASE_URL],
                environment[NATS_URL],
                (int(environment[WAKE_FD]), int(environment[STATUS_FD])),
                provider,
                int(environment.get(STREAM_REPLICAS, "1")),
                float(environment.get(LEASE_SECONDS, "10")),
                float(environment.get(REPORT_SECONDS, "1")),
            )
        )
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
