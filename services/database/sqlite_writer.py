"""SQLite's write path: one connection, driven from the event loop or from its own thread.

A write transaction normally runs on a dedicated writer thread, so the event loop keeps
serving while SQLite works (sqlite3 releases the GIL in every call). But the hop there
and back costs two cross-thread wake-ups, measured at ~180 us on this project's
machines: more than the transaction itself when a single command is waiting. The
caller may therefore ask for a transaction to run inline, on its own thread, when it
has nothing to overlap it with (the batch writer does so for a batch of one).

Inline must never block the loop, so:
- the writer's BEGIN IMMEDIATE does not wait: when another process holds the write
  lock (the relay child marking events, a migration), the transaction goes to the
  thread, which waits its turn with the usual busy timeout;
- the writer never checkpoints: copying the WAL back into the database (and its two
  fsyncs) runs on a checkpointer thread, with its own connection, after commits and at
  most every `CHECKPOINT_INTERVAL_SECONDS`. SQLite's default would run it inside
  whichever commit crosses 1,000 WAL pages.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, make_url

__all__ = ["CHECKPOINT_INTERVAL_SECONDS", "SqliteWriter"]

T = TypeVar("T")

CHECKPOINT_INTERVAL_SECONDS = 0.1
"""At most this often the WAL is copied back: at ~13,000 WAL pages a second (the
wallet's transfers one at a time) about SQLite's own 1,000-page threshold."""

_log = logging.getLogger(__name__)


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _try_begin(cursor: Any) -> bool:
    """BEGIN IMMEDIATE without waiting; False if another connection holds the lock."""
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if _busy(error):
            return False
        raise
    return True


class SqliteWriter:
    """The one writing connection of a SQLite database, and the threads it uses."""

    def __init__(self, url: str, pragmas: Sequence[str], *, busy_timeout_ms: int) -> None:
        """`pragmas` set up every connection; `busy_timeout_ms` bounds how long a
        transaction on the writer thread waits for another process's write lock."""
        self._engine = create_engine(
            make_url(url).set(drivername="sqlite"),
            pool_size=1,
            max_overflow=0,
            # Used from the loop's thread and the writer thread, never both at once
            # (`Database` serialises writers); disposed from the loop's thread.
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Transactions are ours to begin (`_begin`), and SQLAlchemy has no begin
            # event on this engine to issue a BEGIN of its own.
            dbapi_connection.isolation_level = None
            for pragma in pragmas:
                dbapi_connection.execute(pragma)
            # BEGIN IMMEDIATE fails at once instead of waiting (see `_begin`); commits
            # leave checkpoints to the checkpointer.
            dbapi_connection.execute("PRAGMA busy_timeout=0")
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

        self._busy_timeout_ms = busy_timeout_ms
        self._path = make_url(url).database or ""
        self._connection: Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._checkpoint_connection: sqlite3.Connection | None = None
        self._checkpointing: Future[None] | None = None
        self._next_checkpoint = 0.0

    async def run(self, work: Callable[[Connection], T], *, inline: bool) -> T:
        """Run `work` in one write transaction; its result. Committed when `work`
        returns, rolled back if it raises. The caller serialises calls."""
        if inline:
            connection = self._open()
            if self._begin(connection, wait=False):
                return self._transaction(connection, work)
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._waiting, work)

    def _waiting(self, work: Callable[[Connection], T]) -> T:
        connection = self._open()
        self._begin(connection, wait=True)
        return self._transaction(connection, work)

    def _open(self) -> Connection:
        # One connection for the writer's lifetime: a pool checkout per transaction
        # would add a reset (ROLLBACK) round trip each time.
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def _begin(self, connection: Connection, *, wait: bool) -> bool:
        """BEGIN IMMEDIATE on the driver; False if the lock is taken and `wait` is False.

        SQLAlchemy's `begin()` then only marks the transaction it finds open.
        """
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if _try_begin(cursor):
                return True
            if not wait:
                return False
            cursor.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            try:
                cursor.execute("BEGIN IMMEDIATE")
            finally:
                cursor.execute("PRAGMA busy_timeout=0")
            return True
        finally:
            cursor.close()

    def _transaction(self, connection: Connection, work: Callable[[Connection], T]) -> T:
        with connection.begin():
            result = work(connection)
        self._after_commit()
        return result

    def _after_commit(self) -> None:
        now = time.monotonic()
        if now < self._next_checkpoint or not self._path:
            return
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._next_checkpoint = now + CHECKPOINT_INTERVAL_SECONDS
        self._checkpointing = self._checkpointer.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        if self._checkpoint_connection is None:
            self._checkpoint_connection = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False
            )
            self._checkpoint_connection.execute("PRAGMA synchronous=NORMAL")
        # PASSIVE copies what it can without waiting for readers or the writer; a
        # checkpoint another connection is running makes this one a no-op. One that
        # fails leaves the WAL as it was, for the next one to copy.
        try:
            self._checkpoint_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            _log.warning("a WAL checkpoint failed", exc_info=True)

    async def close(self) -> None:
        """Close both connections and stop both threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_writer)
        self._thread.shutdown()
        await loop.run_in_executor(self._checkpointer, self._close_checkpointer)
        self._checkpointer.shutdown()

    def _close_writer(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()

    def _close_checkpointer(self) -> None:
        if self._checkpoint_connection is not None:
            self._checkpoint_connection.close()
            self._checkpoint_connection = None
