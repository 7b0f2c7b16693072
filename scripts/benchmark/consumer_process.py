"""A consuming service for the end-to-end bench, in its own process as in a deployment.

`python -m scripts.benchmark.consumer_process NATS_URL DATABASE_FILE` consumes
UserRegistered with the platform's EventConsumer and records, per event, the wall-clock
time its handler ran (table `handled`), then says `ready` on stdout. SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, Float, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2

from services.database import Database
from services.eventbus import Envelope, EventConsumer, NatsLink, event_tables
from services.runtime.clock import SystemClock

__all__ = ["HANDLED_QUERY", "HANDLED_TABLE", "main"]

HANDLED_TABLE = "handled"
HANDLED_QUERY = "SELECT user_id, at FROM handled"
"""Handler times by user id, for the bench process to read after the window."""
_METADATA = MetaData()
_TABLES = event_tables(_METADATA)
_HANDLED = Table(
    HANDLED_TABLE,
    _METADATA,
    Column("user_id", String(36), primary_key=True),
    Column("at", Float, nullable=False),
)


async def _record(
    session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
) -> None:
    await session.execute(_HANDLED.insert().values(user_id=event.user_id, at=time.time()))


async def _run(nats_url: str, database_file: str) -> None:
    database = Database.connect(f"sqlite+aiosqlite:///{database_file}")
    async with database.write_connection() as connection:
        await connection.run_sync(_METADATA.create_all)
        await connection.execute(text("SELECT 1"))
    link = NatsLink(nats_url, "bench-consumer")
    consumer = EventConsumer(
        "bench-end-to-end",
        database=database,
        tables=_TABLES,
        link=link,
        tracer_provider=TracerProvider(),
        clock=SystemClock(),
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
    """Entry point: NATS URL and SQLite file from the command line."""
    asyncio.run(_run(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
