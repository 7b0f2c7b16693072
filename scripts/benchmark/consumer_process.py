"""A consuming service in its own process, as in a deployment (bench and tests use it).

`python -m scripts.benchmark.consumer_process NATS_URL DATABASE_URL [DURABLE [ACK_WAIT]]`
consumes UserRegistered with the platform's EventConsumer and records every handler run,
with its wall-clock time, in table `handled` (no unique key, so a duplicate effect would
show), then says `ready` on stdout. SIGTERM stops it; SIGKILL is a crash it must survive.
ACK_WAIT (seconds, the services' 30 unless given) is how long JetStream waits for
an acknowledgement before it hands an event out again, as after such a crash.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, Float, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2

from services.database import Database
from services.eventbus import Envelope, EventConsumer, NatsLink, event_tables
from services.runtime.clock import SystemClock

__all__ = ["HANDLED_QUERY", "main"]

_ACK_WAIT_SECONDS = 30.0
"""The ack wait unless one is given: the services' (`event_ack_wait_seconds`)."""
HANDLED_QUERY = "SELECT user_id, at FROM handled"
"""Handler times by user id, for the bench process to read after the window."""
_METADATA = MetaData()
_TABLES = event_tables(_METADATA)
_HANDLED = Table(
    "handled",
    _METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(36), nullable=False),
    Column("at", Float, nullable=False),
)


async def _record(
    session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
) -> None:
    await session.execute(_HANDLED.insert().values(user_id=event.user_id, at=time.time()))


async def _run(nats_url: str, database_url: str, durable: str, ack_wait_seconds: float) -> None:
    database = Database.connect(database_url)
    async with database.write_connection() as connection:
        await connection.run_sync(_METADATA.create_all)
    link = NatsLink(nats_url, durable)
    consumer = EventConsumer(
        durable,
        database=database,
        tables=_TABLES,
        link=link,
        tracer_provider=TracerProvider(),
        clock=SystemClock(),
        ack_wait_seconds=ack_wait_seconds,
    )
    consumer.subscribe(events_pb2.UserRegistered, _record)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    link.start()
    consumer.start()
    await link.wait()
    print("ready", flush=True)
    await stop.wait()
    await consumer.stop()
    await link.close()
    await database.dispose()


def main() -> None:
    """Entry point: NATS URL, database URL, durable name and ack wait from the command
    line."""
    durable = sys.argv[3] if len(sys.argv) > 3 else "bench-end-to-end"
    ack_wait_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else _ACK_WAIT_SECONDS
    asyncio.run(_run(sys.argv[1], sys.argv[2], durable, ack_wait_seconds))


if __name__ == "__main__":
    main()
