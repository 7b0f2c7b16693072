"""The batch writer: many commands, one transaction, each command all-or-nothing."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy import text as text_clause
from sqlalchemy.engine import Connection

from services.database import Database
from services.database.batch_writer import BatchWriter
from services.runtime.errors import FailedPrecondition, Unavailable
from tests.conftest import database_with, empty_database

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


@pytest.fixture
async def two_replicas(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    """Two processes' worth of writers on one PostgreSQL database: the case where two
    batches can deadlock (SQLite has one writer, so it never does)."""
    async with (
        empty_database("postgresql", tmp_path) as url,
        database_with(url, _METADATA) as first,
        database_with(url, _METADATA) as second,
    ):
        async with first.write_connection() as connection:
            await connection.execute(
                _NOTES.insert(), [{"id": 1, "text": ""}, {"id": 2, "text": ""}]
            )
        yield first, second


def _append(number: int, text: str) -> Callable[[Connection], str]:
    """Append to a note, then dwell: the other replica's batch takes its first lock meanwhile."""

    def command(connection: Connection) -> str:
        connection.execute(
            _NOTES.update().where(_NOTES.c.id == number).values(text=_NOTES.c.text + text)
        )
        connection.execute(text_clause("SELECT pg_sleep(0.3)"))
        return text

    return command


@pytest.mark.postgres
async def test_two_replicas_batches_that_deadlock_both_commit(
    two_replicas: tuple[Database, Database],
) -> None:
    # Replica A's batch locks note 1 then note 2, replica B's note 2 then note 1: a cycle
    # that PostgreSQL breaks by failing one of them. Retried inside its batch, the victim
    # meets the same cycle again (its batch still holds its first lock); every command
    # must still commit, once.
    writers = [BatchWriter(database) for database in two_replicas]
    for writer in writers:
        writer.start()
    try:
        results = await asyncio.gather(
            writers[0].submit(_append(1, "a")),
            writers[0].submit(_append(2, "a")),
            writers[1].submit(_append(2, "b")),
            writers[1].submit(_append(1, "b")),
            return_exceptions=True,
        )
    finally:
        for writer in writers:
            await writer.close()
    assert results == ["a", "a", "b", "b"]
    async with two_replicas[0].read() as session:
        notes = (await session.execute(select(_NOTES.c.text).order_by(_NOTES.c.id))).all()
    assert sorted(notes[0][0]) == sorted(notes[1][0]) == ["a", "b"]


@pytest.mark.postgres
async def test_batches_that_name_their_locks_queue_instead_of_deadlocking(
    two_replicas: tuple[Database, Database], caplog: pytest.LogCaptureFixture
) -> None:
    # The same opposite orders, but each command names the note it changes: the
    # batches take those locks first, in one order, so the second waits for the first
    # and PostgreSQL never has to break a cycle (nothing is run again).
    writers = [BatchWriter(database) for database in two_replicas]
    for writer in writers:
        writer.start()
    try:
        with caplog.at_level(logging.INFO, logger="services.database.batch_writer"):
            results = await asyncio.gather(
                writers[0].submit(_append(1, "a"), locks=["note:1"]),
                writers[0].submit(_append(2, "a"), locks=["note:2"]),
                writers[1].submit(_append(2, "b"), locks=["note:2"]),
                writers[1].submit(_append(1, "b"), locks=["note:1"]),
            )
    finally:
        for writer in writers:
            await writer.close()
    assert results == ["a", "a", "b", "b"]
    assert [r.message for r in caplog.records if "lost a race" in r.message] == []
    async with two_replicas[0].read() as session:
        notes = (await session.execute(select(_NOTES.c.text).order_by(_NOTES.c.id))).all()
    assert notes[0][0] == notes[1][0]  # both in the order the batches committed


async def test_a_lone_command_leaves_the_event_loop_while_other_calls_are_in_flight(
    tmp_path: Path,
) -> None:
    """Alone, a command runs on the loop's own thread (no hop to pay for); while the
    service says other calls are in flight, it runs on the writer thread, so that the
    loop keeps serving them meanwhile. SQLite only: it is the backend with a writer
    thread (PostgreSQL's driver awaits the server)."""
    others_in_flight = False
    loop_thread = threading.get_ident()

    def on_the_loop(_connection: Connection) -> bool:
        return threading.get_ident() == loop_thread

    async with (
        empty_database("sqlite", tmp_path) as url,
        database_with(url, _METADATA) as database,
    ):
        writer = BatchWriter(database, busy=lambda: others_in_flight)
        writer.start()
        try:
            alone = await writer.submit(on_the_loop)
            others_in_flight = True
            among_others = await writer.submit(on_the_loop)
        finally:
            await writer.close()
    assert alone is True
    assert among_others is False
