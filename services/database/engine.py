"""One async engine per service, with transactions that behave the same on both backends.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write transactions
start with `BEGIN IMMEDIATE`: a deferred BEGIN that later writes fails at once with
"database is locked" instead of waiting its turn. PostgreSQL runs through asyncpg; domain
code takes row locks (`SELECT … FOR UPDATE`) where SQLite relies on its single writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row, Select, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from services.database.after_commit import run_after_commit
from services.database.prepared import PreparedQuery
from services.database.sqlite_writer import SqliteWriter

if TYPE_CHECKING:  # not imported at run time: the relay's child process has no metrics
    from services.runtime.metrics import Metrics

__all__ = ["SCAN_INLINE_BUDGET_SECONDS", "Database"]

T = TypeVar("T")

SCAN_INLINE_BUDGET_SECONDS = 0.002
"""How long a scan may hold the event loop before it moves to a worker thread."""
# SQLite virtual-machine steps between checks of that budget (a few microseconds each).
_PROGRESS_STEPS = 1000

_WRITE = "superapp_write"
# How long a writer waits for another process's write lock before it fails.
_BUSY_TIMEOUT_MS = 10_000
_SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # Statement journals (a savepoint per batched command) and sorts stay in memory: on
    # the default, file, every write transaction created and unlinked a file in
    # /var/tmp, six system calls and a directory update each.
    "PRAGMA temp_store=MEMORY",
)


def _inline_reader(url: str) -> Engine:
    """A synchronous, read-only engine on the same SQLite file, for `lookup` and `scan`."""
    engine = create_engine(
        make_url(url).set(drivername="sqlite"),
        # Each connection is used by the one thread that opened it (see _ThreadReaders),
        # but closed by whichever thread disposes of the database.
        connect_args={"check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # Never a writer; and never wait long on the event loop's thread.
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute("PRAGMA busy_timeout=250")
        # Read pages straight from the OS cache instead of copying them into each
        # connection's own small cache: ~20% off a search over 100k products. The file
        # never shrinks under a reader (no service runs VACUUM), which mmap needs.
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    return engine


class _ThreadReaders:
    """One kept-open read-only connection per reading thread: the event loop's for
    `lookup`, each worker's for `scan`. A pool checkout per read would cost a reset
    round trip, and reusing one connection across threads would serialize them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def connection(self) -> Any:
        """This thread's sqlite3 connection."""
        found = getattr(self._local, "connection", None)
        if found is None:
            found = self._local.connection = self._engine.raw_connection()
            with self._lock:
                self._opened.append(found)
        return found.driver_connection

    def close(self) -> None:
        """Close every thread's connection; reads after this open new ones."""
        with self._lock:
            opened, self._opened = self._opened, []
        self._local = threading.local()
        for connection in opened:
            connection.close()


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        for pragma in _SQLITE_PRAGMAS:
            while True:
                try:
                    cursor.execute(pragma)
                    break
                except Exception as error:
                    # Two processes opening a new file at once both switch it to WAL,
                    # and SQLite answers one "database is locked" at once, without
                    # waiting out busy_timeout (seen with two replicas starting together).
                    if "locked" not in str(error) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        # Straight to the driver: `exec_driver_sql` would build a whole execution
        # context (~25 us) for a statement with no parameters and no result.
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None  # a connection that begins is checked out
        cursor = dbapi_connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        cursor.close()


class _WriteTurn:
    """SQLite's one writer per process: a FIFO lock that knows how many wait for it."""

    __slots__ = ("_lock", "waiting")

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *_exc: object) -> None:
        self._lock.release()


def _unmeasured(_seconds: float) -> None:
    pass


class Database:
    """A service's database: `write()` and `read()` transactions, `lookup()` and `scan()`
    reads outside them, `ping()`, `dispose()`."""

    def __init__(
        self, engine: AsyncEngine, *, offload_scans_when: Callable[[], bool] = lambda: False
    ) -> None:
        self.engine = engine
        self._offload_scans = offload_scans_when
        # SQLite has one writer. Writers of this process queue here, in FIFO order,
        # instead of meeting SQLite's busy handler, which polls with sleeps of up to
        # 100 ms; busy_timeout still arbitrates between processes.
        self._write_turn = _WriteTurn() if engine.dialect.name == "sqlite" else None
        self._writer_queues: list[Callable[[], int]] = []
        # Where transaction durations go (see `instrument`); nowhere until then.
        self._observe_read: Callable[[float], None] = _unmeasured
        self._observe_write: Callable[[float], None] = _unmeasured
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self._inline: Engine | None = None
        self._readers: _ThreadReaders | None = None
        self._inline_queries: dict[Select[Any], PreparedQuery] = {}
        self._sqlite_writer: SqliteWriter | None = None
        self._writes = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._reads = async_sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        echo: bool = False,
        offload_scans_when: Callable[[], bool] = lambda: False,
        metrics: Metrics | None = None,
    ) -> Database:
        """Create the engine for `url` (sqlite+aiosqlite or postgresql+asyncpg).

        `offload_scans_when` says whether other work is waiting for the event loop, so
        that a SQLite scan goes to a worker thread at once (see `scan`): a service passes
        its `CallsInFlight.others`. With `metrics`, the database is `instrument`ed.
        """
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if url.startswith("postgresql"):
            options.update(pool_size=10, max_overflow=10)
        engine = create_async_engine(url, **options)
        database = cls(engine, offload_scans_when=offload_scans_when)
        if engine.dialect.name == "sqlite":
            _prepare_sqlite(engine.sync_engine)
            database._inline = _inline_reader(url)
            database._readers = _ThreadReaders(database._inline)
            database._sqlite_writer = SqliteWriter(
                url, _SQLITE_PRAGMAS, busy_timeout_ms=_BUSY_TIMEOUT_MS
            )
        if metrics is not None:
            database.instrument(metrics)
        return database

    def instrument(self, metrics: Metrics) -> None:
        """Report to `metrics`: transaction durations by kind (`read()` is a read;
        `write()`, `write_connection()` and `sync_write()` are writes, timed from BEGIN
        to COMMIT, the wait for the write turn left out), pooled connections in use,
        and writers waiting (for the write turn, or in a `BatchWriter`'s queue). The
        two gauges are read when Prometheus scrapes, costing the hot path nothing."""
        seconds = metrics.histogram(
            "superapp_db_transaction_seconds",
            "Duration of database transactions, BEGIN to COMMIT or ROLLBACK.",
            ("kind",),
        )
        self._observe_read = seconds.labels("read").observe
        self._observe_write = seconds.labels("write").observe
        metrics.gauge(
            "superapp_db_pool_connections_in_use",
            "Connections of the service's pool checked out right now.",
        ).set_function(self._connections_in_use)
        metrics.gauge(
            "superapp_db_writer_queue_depth",
            "Writes waiting their turn: for the process's one SQLite writer, or queued "
            "for a batch writer's next batch.",
        ).set_function(self._writers_waiting)

    def add_writer_queue(self, depth: Callable[[], int]) -> None:
        """Count `depth()` (a batch writer's queue) among the writers waiting."""
        self._writer_queues.append(depth)

    def _connections_in_use(self) -> float:
        checked_out = getattr(self.engine.sync_engine.pool, "checkedout", None)
        return float(checked_out()) if checked_out is not None else 0.0

    def _writers_waiting(self) -> float:
        turn = self._write_turn.waiting if self._write_turn is not None else 0
        return float(turn + sum(depth() for depth in self._writer_queues))

    @property
    def url(self) -> str:
        """The URL this database was opened with, password included: for a child process
        that opens it again."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`, for the few statements that differ between them."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        Once it committed, and only then, the actions its work left in
        `after_commit(session)` run (its business metrics count).
        """
        async with self._turn(), self._writes() as session:
            began = time.perf_counter()
            try:
                async with session.begin():
                    yield session
            finally:
                self._observe_write(time.perf_counter() - began)
            run_after_commit(session)

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core-level write transaction, for migrations and batched hot paths."""
        async with self._turn():
            began = time.perf_counter()
            try:
                async with self._write_engine.begin() as connection:
                    yield connection
            finally:
                self._observe_write(time.perf_counter() - began)

    async def sync_write(self, work: Callable[[Connection], T], *, inline: bool = False) -> T:
        """Run `work` in one write transaction on a synchronous connection; its result.

        The hot write path: `work` issues plain (blocking) Core statements with no
        await between them. On SQLite it runs on a dedicated writer thread, one thread
        hop per transaction instead of one per statement, or with `inline` on the
        caller's thread when the write lock is free (for a caller with nothing to
        overlap the hop with; see `SqliteWriter`). On PostgreSQL it runs through
        `run_sync`. Committed when `work` returns, rolled back if it raises.
        """
        async with self._turn():
            began = time.perf_counter()
            try:
                if self._sqlite_writer is not None:
                    return await self._sqlite_writer.run(work, inline=inline)
                async with self._write_engine.begin() as connection:
                    return await connection.run_sync(work)
            finally:
                self._observe_write(time.perf_counter() - began)

    def _turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction with a consistent snapshot on both backends."""
        began = time.perf_counter()
        try:
            async with self._reads() as session, session.begin():
                yield session
        finally:
            self._observe_read(time.perf_counter() - began)

    async def lookup(
        self, statement: Select[Any], parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """The rows of one SELECT, outside any transaction: the fast path for point reads.

        On SQLite it runs inline on the calling thread with a read-only sqlite3
        connection: WAL readers never wait for writers, and the hops to aiosqlite's
        thread cost ~2 ms per read against ~0.1 ms inline. Use it only for indexed
        look-ups, which cannot stall the event loop; anything else belongs in `scan`.
        Build `statement` once with `bindparam`s and pass `parameters` per call: that
        skips SQLAlchemy's per-call construction and cache-key work, most of its cost.
        """
        if self._inline is not None:
            return self._inline_rows(statement, parameters)
        async with self.engine.connect() as connection:
            rows: Sequence[Row[Any]] = (await connection.execute(statement, parameters)).all()
            return rows

    async def scan(
        self, statement: Select[Any], parameters: Mapping[str, Any] | None = None
    ) -> Sequence[Row[Any]]:
        """The rows of one SELECT that may visit many rows (a listing page, a search).

        Like `lookup`, but on SQLite a scan may hold the event loop for at most
        `SCAN_INLINE_BUDGET_SECONDS`: it runs on the calling thread first, and one that
        runs over is interrupted and run again on a worker thread (sqlite3 releases the
        GIL while it works), so a slow query never stalls the loop for longer. Most
        pages and searches finish inside the budget and skip the hop to the worker
        and back, two cross-thread wake-ups that cost ~0.2 ms here.

        Except under load: when `offload_scans_when()` says other calls are waiting,
        the scan goes to a worker thread at once, so SQLite works on another core
        while the loop serves them. Elsewhere it is `lookup`.
        """
        if self._inline is not None:
            if not self._offload_scans():
                rows = self._rows_within_budget(statement, parameters)
                if rows is not None:
                    return rows
            return await asyncio.to_thread(self._inline_rows, statement, parameters)
        return await self.lookup(statement, parameters)

    def _prepared_query(self, statement: Select[Any]) -> PreparedQuery:
        assert self._inline is not None
        # Compiled once per statement. Threads may compile the same statement at once;
        # either result is the same.
        query = self._inline_queries.get(statement)
        if query is None:
            query = self._inline_queries[statement] = PreparedQuery(statement, self._inline.dialect)
        return query

    def _rows_within_budget(
        self, statement: Select[Any], parameters: Mapping[str, Any] | None
    ) -> Sequence[Row[Any]] | None:
        """The rows, read on this thread; None if reading them ran over the budget."""
        assert self._readers is not None
        query = self._prepared_query(statement)
        if not query.supported:
            return None
        connection = self._readers.connection()
        deadline = time.perf_counter() + SCAN_INLINE_BUDGET_SECONDS
        connection.set_progress_handler(lambda: time.perf_counter() > deadline, _PROGRESS_STEPS)
        try:
            return query.rows(connection, parameters or {})
        except sqlite3.OperationalError as error:
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
                return None
            raise
        finally:
            connection.set_progress_handler(None, 0)

    def _inline_rows(
        self, statement: Select[Any], parameters: Mapping[str, Any] | None
    ) -> Sequence[Row[Any]]:
        assert self._inline is not None
        assert self._readers is not None
        # This thread's own read-only connection, kept open, and the statement compiled
        # once: a read then costs the SQL and little else.
        query = self._prepared_query(statement)
        if query.supported:
            return query.rows(self._readers.connection(), parameters or {})
        with self._inline.connect() as connection:
            return connection.execute(statement, parameters).all()

    async def ping(self) -> None:
        """Run a trivial query; raises if the database cannot be reached."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._readers is not None:
            self._readers.close()
        if self._inline is not None:
            self._inline.dispose()
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
