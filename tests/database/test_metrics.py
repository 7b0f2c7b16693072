"""The database's metrics: transactions by kind, connections in use, writers waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.engine import Connection

from services.database import Database
from services.database.batch_writer import BatchWriter
from services.runtime.metrics import Metrics
from tests.conftest import database_with

_METADATA = MetaData()
_ROWS = Table("rows", _METADATA, Column("id", Integer, primary_key=True))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[tuple[Database, Metrics]]:
    metrics = Metrics("test")
    async with database_with(database_url, _METADATA) as database:
        database.instrument(metrics)
        yield database, metrics


def _insert(number: int) -> Callable[[Connection], None]:
    def command(connection: Connection) -> None:
        connection.execute(_ROWS.insert().values(id=number))

    return command


async def test_transactions_are_timed_by_kind_and_connections_in_use_are_seen(
    database: tuple[Database, Metrics],
) -> None:
    db, metrics = database
    async with db.write() as session:
        await session.execute(_ROWS.insert().values(id=1))
    await db.sync_write(lambda connection: connection.execute(_ROWS.insert().values(id=2)))
    async with db.read() as session:
        assert len((await session.execute(select(_ROWS))).all()) == 2
        assert metrics.value("superapp_db_pool_connections_in_use") == 1
    assert metrics.value("superapp_db_pool_connections_in_use") == 0

    def transactions(kind: str) -> float:
        return metrics.value("superapp_db_transaction_seconds_count", {"kind": kind})

    assert transactions("write") == 2
    assert transactions("read") == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_writers_waiting_for_sqlites_one_writer_are_counted(
    database: tuple[Database, Metrics],
) -> None:
    """SQLite only: PostgreSQL's writers do not queue in the process (its row locks
    decide), so there the depth is only the batch writer's queue."""
    db, metrics = database
    writer = BatchWriter(db)
    writer.start()

    def depth() -> float:
        return metrics.value("superapp_db_writer_queue_depth")

    async def depth_is(value: float) -> None:
        for _ in range(3000):
            if depth() == value:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the writer queue depth stayed {depth()}, not {value}")

    try:
        async with db.write() as session:  # holds the one writer's turn
            await session.execute(_ROWS.insert().values(id=100))
            waiting = asyncio.create_task(_write_one(db, 101))
            # The batch writer takes these into one batch, which waits for the turn.
            first_batch = [asyncio.create_task(writer.submit(_insert(n))) for n in (1, 2)]
            await depth_is(2)
            # Submitted while that batch waits: they queue for the next one.
            queued = [asyncio.create_task(writer.submit(_insert(n))) for n in (3, 4, 5)]
            await depth_is(5)
        await asyncio.gather(waiting, *first_batch, *queued)
        assert depth() == 0
    finally:
        await writer.close()


async def _write_one(db: Database, number: int) -> None:
    async with db.write() as session:
        await session.execute(_ROWS.insert().values(id=number))
