"""Counts made by a transaction's work run once it committed, and never after a rollback,
on a session of `Database.write()` and on a command of the `BatchWriter`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.database import Database
from services.database.after_commit import AfterCommit, after_commit, restarting
from services.database.batch_writer import BatchWriter, RunAgain
from services.runtime.errors import FailedPrecondition
from tests.conftest import database_with

_METADATA = MetaData()
_NOTES = Table("notes", _METADATA, Column("id", Integer, primary_key=True))


class Tally:
    """A counter, as `AfterCommit.count` sees one."""

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with database_with(database_url, _METADATA) as database:
        yield database


async def test_a_session_counts_once_it_committed_and_not_after_a_rollback(
    database: Database,
) -> None:
    tally = Tally()
    async with database.write() as session:
        await session.execute(_NOTES.insert().values(id=1))
        after_commit(session).count(tally)
        after_commit(session).count(tally, 2)
        assert tally.value == 0  # not before the commit
    assert tally.value == 3

    async def refused() -> None:
        async with database.write() as session:
            await session.execute(_NOTES.insert().values(id=2))
            after_commit(session).count(tally, 10)
            raise FailedPrecondition("REFUSED", "changed its mind")

    async def duplicate() -> None:
        async with database.write() as session:
            after_commit(session).count(tally, 100)
            await session.execute(_NOTES.insert().values(id=1))

    with pytest.raises(FailedPrecondition):
        await refused()
    with pytest.raises(IntegrityError):
        await duplicate()
    assert tally.value == 3


def _counted(number: int, tally: Tally, counts: AfterCommit) -> Callable[[Connection], int]:
    def command(connection: Connection) -> int:
        counts.count(tally)
        connection.execute(_NOTES.insert().values(id=number))
        return number

    return command


async def test_a_batched_command_counts_once_even_when_run_again(database: Database) -> None:
    tally = Tally()
    writer = BatchWriter(database)
    writer.start()
    runs = 0

    def lose_the_first_race(connection: Connection) -> int:
        nonlocal runs
        runs += 1
        counts.count(tally)
        if runs == 1:
            raise RunAgain
        connection.execute(_NOTES.insert().values(id=1))
        return 1

    counts = AfterCommit()
    refused_counts = AfterCommit()
    try:
        await writer.submit(restarting(counts, lose_the_first_race), after_commit=counts.run)
        refused = writer.submit(
            restarting(refused_counts, _counted(1, tally, refused_counts)),  # a duplicate
            after_commit=refused_counts.run,
        )
        outcomes = await asyncio.gather(refused, return_exceptions=True)
    finally:
        await writer.close()

    assert runs == 2
    assert isinstance(outcomes[0], Exception)
    assert tally.value == 1
