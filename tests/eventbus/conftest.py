"""An event-bus test bench: a database with outbox, inbox and an effects table, and
producers/consumers wired as a service would wire them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.identity.v1 import events_pb2

from scripts.nats_process import NatsProcess
from services.database import Database
from services.eventbus import (
    Envelope,
    EventConsumer,
    EventTables,
    NatsLink,
    Outbox,
    OutboxRelay,
    event_tables,
    stream_of,
)
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from tests.conftest import database_with

METADATA = MetaData()
TABLES: EventTables = event_tables(METADATA)
EFFECTS = Table(
    "effects",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(36), nullable=False),
)


@dataclass
class Bench:
    """A producer (outbox + relay) and consumer over one database and one NATS."""

    database: Database
    nats_url: str
    tracer_provider: TracerProvider
    links: list[NatsLink] = field(default_factory=list)
    relays: list[OutboxRelay] = field(default_factory=list)
    consumers: list[EventConsumer] = field(default_factory=list)

    def link(self, name: str) -> NatsLink:
        link = NatsLink(self.nats_url, name, retry_seconds=0.1)
        link.start()
        self.links.append(link)
        return link

    def producer(self, **options: object) -> tuple[Outbox, OutboxRelay]:
        outbox = Outbox(TABLES, "superapp.identity", SystemClock())
        relay = OutboxRelay(
            database=self.database,
            tables=TABLES,
            outbox=outbox,
            link=self.link("producer"),
            stream=stream_of("identity"),
            tracer_provider=self.tracer_provider,
            clock=SystemClock(),
            ack_timeout_seconds=1.0,
            **options,  # type: ignore[arg-type]
        )
        relay.start()
        self.relays.append(relay)
        return outbox, relay

    def consumer(self, handler: object = None, **options: object) -> EventConsumer:
        consumer = EventConsumer(
            "effects",
            database=self.database,
            tables=TABLES,
            link=self.link("consumer"),
            tracer_provider=self.tracer_provider,
            clock=SystemClock(),
            **options,  # type: ignore[arg-type]
        )
        consumer.subscribe(events_pb2.UserRegistered, handler or record_effect)  # type: ignore[arg-type]
        consumer.start()
        self.consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        for relay in self.relays:
            await relay.stop()
        for link in self.links:
            await link.close()


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Wait until `check()` holds, polling; fail naming `what` after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def produce(bench: Bench, outbox: Outbox, count: int, per_transaction: int = 10) -> None:
    """Commit `count` UserRegistered events through `outbox`, `per_transaction` at a time."""
    for _ in range(count // per_transaction):
        async with bench.database.write() as session:
            for _ in range(per_transaction):
                user_id = new_id()
                await outbox.record(
                    session, events_pb2.UserRegistered(user_id=user_id), aggregate_id=user_id
                )
        await asyncio.sleep(0.001)


async def record_effect(
    session: AsyncSession, event: events_pb2.UserRegistered, envelope: Envelope
) -> None:
    """The consumer's side effect: one row per handled event."""
    await session.execute(EFFECTS.insert().values(user_id=event.user_id))


async def effects(database: Database) -> tuple[int, int]:
    """(rows, distinct user ids) in the effects table."""
    async with database.read() as session:
        rows, distinct = (
            await session.execute(
                select(func.count(), func.count(func.distinct(EFFECTS.c.user_id)))
            )
        ).one()
    return int(rows), int(distinct)


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsProcess]:
    """A private nats-server for one test, so a test may kill and restart it."""
    with NatsProcess(tmp_path / "nats") as server:
        yield server


@pytest.fixture
async def bench(
    database_url: str, nats: NatsProcess, tracer_provider: TracerProvider
) -> AsyncIterator[Bench]:
    """The database migrated for the bus, and a place to hang producers and consumers."""
    async with database_with(database_url, METADATA) as database:
        bench = Bench(database, nats.url, tracer_provider)
        try:
            yield bench
        finally:
            await bench.close()
