"""The outbox relay's child process: relay until the parent lets go, flush, exit.

Started by `RelayProcess` (see `services.eventbus.relay_process`, which explains why
the relay runs apart from its service); configured through its environment. Not
imported by the `services.eventbus` package, so `python -m` runs it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData

from services.database import Database
from services.eventbus.relay_process import DATABASE_URL, LOG_LEVEL, NATS_URL, SERVICE, WAKE_FD
from services.eventbus.schema import EventTables
from services.eventbus.wiring import ServiceEventBus
from services.runtime.clock import SystemClock
from services.runtime.logs import configure_logging
from services.runtime.telemetry import tracer_provider_from_env

__all__ = ["main"]


async def _relay_until_released(
    service: str, database_url: str, nats_url: str, wake_fd: int, tracer_provider: TracerProvider
) -> None:
    database = Database.connect(database_url)
    bus = ServiceEventBus(
        service,
        nats_url=nats_url,
        database=database,
        # The same columns as every service's own declaration of them.
        tables=EventTables(MetaData()),
        tracer_provider=tracer_provider,
        clock=SystemClock(),
        relay="task",
    )
    loop = asyncio.get_running_loop()
    released = asyncio.Event()

    def readable() -> None:
        try:
            woken = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if woken:
            bus.outbox.wake()
        else:  # the parent closed the pipe, or died
            loop.remove_reader(wake_fd)
            released.set()

    os.set_blocking(wake_fd, False)
    loop.add_reader(wake_fd, readable)
    loop.add_signal_handler(signal.SIGTERM, released.set)
    bus.start()
    try:
        await released.wait()
    finally:
        await bus.stop()
        await database.dispose()


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
                int(environment[WAKE_FD]),
                provider,
            )
        )
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
