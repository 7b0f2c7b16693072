"""SQLite's write path: inline writes never stall the event loop, and the WAL is
checkpointed off the write path instead of growing without end."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, func, select
from sqlalchemy.engine import Connection

from services.database import Database
from services.database.batch_writer import BatchWriter
from services.database.sqlite_writer import CHECKPOINT_INTERVAL_SECONDS
from tests.conftest import database_with

_METADATA = MetaData()
_BLOBS = Table(
    "blobs", _METADATA, Column("id", Integer, primary_key=True), Column("data", LargeBinary)
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "service.db"


@pytest.fixture
async def database(path: Path) -> AsyncIterator[Database]:
    async with database_with(f"sqlite+aiosqlite:///{path}", _METADATA) as database:
        yield database


def _insert(number: int, size: int = 10) -> Callable[[Connection], int]:
    def command(connection: Connection) -> int:
        connection.execute(_BLOBS.insert().values(id=number, data=bytes(size)))
        return number

    return command


def _wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def _database_size(path: Path) -> int:
    return path.stat().st_size


async def _count(database: Database) -> int:
    async with database.read() as session:
        return int((await session.execute(select(func.count()).select_from(_BLOBS))).scalar_one())


async def test_a_lone_write_waits_for_another_process_without_stalling_the_loop(
    database: Database, path: Path
) -> None:
    """A lone command is tried inline; when another process holds the write lock it
    waits on the writer thread instead, and the loop keeps serving meanwhile."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction
    writer = BatchWriter(database)
    writer.start()
    try:
        write = asyncio.create_task(writer.submit(_insert(1)))
        # A hundred turns of this coroutine: had the write waited on the loop's thread,
        # it would have held the loop until the busy timeout failed it.
        for _ in range(100):
            await asyncio.sleep(0)
        assert not write.done()  # still waiting for the lock, while the loop went on
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 30) == 1
    finally:
        other.close()
        await writer.close()
    assert await _count(database) == 1


async def _until_copied(path: Path, at_least: int, writer: BatchWriter) -> None:
    """Wait until the database file (not the WAL) holds `at_least` bytes: the
    checkpointer has copied the commits into it. A commit made while a checkpoint was
    still finishing starts none, so each second without progress brings another one
    (a rewrite of row 0, a page or two) that does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    nudge_at = loop.time() + 1
    while _database_size(path) < at_least:
        assert loop.time() < deadline, "the checkpointer never copied the WAL back"
        if loop.time() > nudge_at:
            await writer.submit(_rewrite_first)
            nudge_at = loop.time() + 1
        await asyncio.sleep(0.01)


def _rewrite_first(connection: Connection) -> None:
    connection.execute(_BLOBS.update().where(_BLOBS.c.id == 0).values(data=_BLOBS.c.data))


async def test_the_wal_is_checkpointed_while_writes_go_on(database: Database, path: Path) -> None:
    """The checkpointer, not the writer, copies commits into the database file, and a
    WAL that it has copied back is reused from its start, so it does not grow with
    everything ever written. Each commit here waits until the one before is copied:
    how far the WAL grows when commits outpace the checkpointer depends on the disk
    and the machine's load, not on the code."""
    writer = BatchWriter(database)
    writer.start()
    commits, size = 20, 128 * 1024
    try:
        for number in range(commits):
            # Checkpoints start at most every interval, after a commit.
            await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS)
            await writer.submit(_insert(number, size))
            await _until_copied(path, (number + 1) * size, writer)
    finally:
        await writer.close()
    assert await _count(database) == commits
    written = commits * size
    # Without checkpoints the WAL would hold all 2.5 MB; reused, it holds about one
    # commit (and a late copy now and then lets it grow by one more).
    assert _wal_size(path) < written / 2
