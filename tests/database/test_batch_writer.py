"""The batch writer: many commands, one transaction, each command all-or-nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.engine import Connection

from services.database import Database
from services.database.batch_writer import BatchWriter
from services.runtime.errors import FailedPrecondition, Unavailable
from tests.conftest import database_with

_METADATA = MetaData()
_NOTES = Table("notes", _METADATA, Column("id", Integer, primary_key=True), Column("text", String))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with database_with(database_url, _METADATA) as database:
        yield database


def _note(number: int, *, then_fail: bool = False) -> Callable[[Connection], int]:
    def command(connection: Connection) -> int:
        connection.execute(_NOTES.insert().values(id=number, text=f"note {number}"))
        if then_fail:
            raise FailedPrecondition("REFUSED", "this command changes its mind")
        return number

    return command


async def _stored(database: Database) -> list[int]:
    async with database.read() as session:
        return list((await session.scalars(select(_NOTES.c.id).order_by(_NOTES.c.id))).all())


async def test_a_failing_command_rolls_back_alone(database: Database) -> None:
    writer = BatchWriter(database)
    writer.start()
    try:
        outcomes = await asyncio.gather(
            *(writer.submit(_note(n, then_fail=n % 3 == 0)) for n in range(1, 31)),
            return_exceptions=True,
        )
    finally:
        await writer.close()
    refused = [n for n, o in zip(range(1, 31), outcomes, strict=True) if isinstance(o, Exception)]
    assert refused == list(range(3, 31, 3))
    assert all(isinstance(outcomes[n - 1], FailedPrecondition) for n in refused)
    # The others committed, each exactly once, and the refused left nothing behind.
    assert await _stored(database) == [n for n in range(1, 31) if n % 3]


async def test_commands_see_the_effects_of_earlier_ones_in_their_batch(
    database: Database,
) -> None:
    writer = BatchWriter(database)
    writer.start()

    def count(connection: Connection) -> int:
        return int(connection.execute(select(func.count()).select_from(_NOTES)).scalar_one())

    try:
        results = await asyncio.gather(
            writer.submit(_note(1)),
            writer.submit(count),
            writer.submit(_note(1)),  # the same key again
            writer.submit(count),
            return_exceptions=True,
        )
    finally:
        await writer.close()
    assert results[0] == 1
    assert results[1] == 1
    assert isinstance(results[2], Exception)  # a duplicate key, not a lost write
    assert results[3] == 1
    with pytest.raises(Unavailable):
        await writer.submit(count)
