"""SQLite's write path: inline writes never stall the event loop, and the WAL is
checkpointed off the write path instead of growing without end."""

from __future__ import annotations

import asyncio
import sqlite3
import time
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
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        write = asyncio.create_task(writer.submit(_insert(1)))
        await asyncio.sleep(0.3)
        assert not write.done()  # still waiting for the lock...
        assert len(ticks) >= 10  # ...while the loop went on
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 5) == 1
    finally:
        ticking.cancel()
        other.close()
        await writer.close()
    assert await _count(database) == 1


async def test_the_wal_is_checkpointed_while_writes_go_on(database: Database, path: Path) -> None:
    """The writer never checkpoints itself; the checkpointer keeps the WAL from growing
    with everything ever written (SQLite reuses a checkpointed WAL from its start)."""
    writer = BatchWriter(database)
    writer.start()
    # Without checkpoints the WAL would hold all 15 MB. The checkpointer restarts it
    # from its start only when it has copied every frame before the next commit, so the
    # commits leave it gaps; how much the WAL still grows depends on the disk's fsync
    # (with half these gaps, a third of what was written on a slow virtual disk).
    commits, size = 120, 128 * 1024
    try:
        for number in range(commits):
            await writer.submit(_insert(number, size))
            await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS / 5)
    finally:
        await writer.close()
    assert await _count(database) == commits
    written = commits * size
    assert _wal_size(path) < written / 2
