"""Write transactions serialise instead of failing, on SQLite as on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.database import Database


async def test_concurrent_read_modify_write_from_two_engines_loses_nothing(
    database_url: str,
) -> None:
    """Two engines stand for two processes. On SQLite, BEGIN IMMEDIATE makes the second
    writer wait instead of failing with "database is locked"; on PostgreSQL the row lock
    does the same."""
    first, second = Database.connect(database_url), Database.connect(database_url)
    select_n = "SELECT n FROM counter"
    if first.dialect == "postgresql":
        select_n += " FOR UPDATE"
    try:
        async with first.write() as session:
            await session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            await session.execute(text("INSERT INTO counter VALUES (0)"))

        async def increment(database: Database) -> None:
            async with database.write() as session:
                value = (await session.execute(text(select_n))).scalar_one()
                await asyncio.sleep(0)  # let the other writers interleave
                await session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})

        await asyncio.gather(*(increment(db) for db in [first, second] * 25))
        async with first.read() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 50
    finally:
        await first.dispose()
        await second.dispose()


async def test_failed_write_leaves_nothing_behind(database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        async with database.write() as session:
            await session.execute(text("CREATE TABLE items (name TEXT NOT NULL)"))

        async def write_then_fail() -> None:
            async with database.write() as session:
                await session.execute(text("INSERT INTO items VALUES ('half-written')"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await write_then_fail()
        async with database.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM items"))).scalar_one() == 0
    finally:
        await database.dispose()


async def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    database = Database.connect(f"sqlite+aiosqlite:///{tmp_path}/wal.db")
    try:
        async with database.read() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
            timeout = (await session.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await database.dispose()
    assert (mode, timeout) == ("wal", 10000)
