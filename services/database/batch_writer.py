"""One writer task that commits queued commands in batches: a transaction per batch.

Each command is a plain function of a synchronous connection. The writer takes every
command queued while the previous batch was committing, runs them one after another
in a single transaction, each inside its own savepoint, and commits once. A command
that raises is rolled back to its savepoint alone and its caller gets the error; the
others still commit. Because commands run strictly one after another, each sees the
effects of the ones before it: a batch is equivalent to running its commands serially,
so no invariant depends on commands being independent.

Why: on SQLite every commit and every aiosqlite statement costs a thread hop; a batch
pays one hop and one commit for many commands, and a batch of one, the usual case
under light load, pays none (see `Database.sync_write`).

On PostgreSQL, replicas' batches run side by side and each holds the row locks of all
its commands until it commits, so two batches that touch the same rows in different
orders deadlock, and PostgreSQL only notices after `deadlock_timeout` (1 s). Two
defences:
- A command names what it will lock (`submit(locks=...)`, e.g. the ledger accounts of a
  transfer). A batch takes transaction-scoped advisory locks on all its commands' names
  first, in one global order, so batches that share a name queue instead of forming a
  cycle.
- A conflict PostgreSQL reports anyway (a command that named nothing) cannot be retried
  inside its batch: the batch's earlier locks are still held and the same cycle forms
  again. So it aborts the whole batch (releasing its locks, letting the other commit)
  and its commands run again one transaction each; a lone command that keeps losing
  answers UNAVAILABLE `WRITE_CONFLICT`, which its caller may retry.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from services.database.engine import Database
from services.runtime.errors import ServiceError, Unavailable

__all__ = ["BatchWriter", "Command", "RunAgain"]

T = TypeVar("T")
Command = Callable[[Connection], T]

_log = logging.getLogger(__name__)
# PostgreSQL's "deadlock detected" and "serialization failure": the statement was
# chosen as the victim and may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
_ATTEMPTS = 3
# Advisory locks in the order given (array order is scan order for `unnest`).
_LOCK_IN_ORDER = text("SELECT pg_advisory_xact_lock(key) FROM unnest(:keys) AS key").bindparams(
    bindparam("keys", type_=ARRAY(BIGINT))
)


class _BatchConflict(Exception):
    """A command of a batch of several lost a deadlock or serialization race."""


class RunAgain(Exception):
    """Raised by a command that lost a race a fresh attempt resolves (say, a concurrent
    insert of the same key): its effects are rolled back and it runs once more."""


@dataclass(slots=True)
class _Queued:
    command: Command[Any]
    future: asyncio.Future[Any]
    # The submitter's context (current trace, caller): its command runs inside it.
    context: contextvars.Context
    after_commit: Callable[[], None] | None
    locks: Collection[str]


@dataclass(slots=True)
class _Outcome:
    result: Any = None
    error: BaseException | None = None


class BatchWriter:
    """Commits submitted commands in batches of up to `max_batch`."""

    def __init__(
        self,
        database: Database,
        *,
        max_batch: int = 256,
        after_commit: Sequence[Callable[[], None]] = (),
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        """`busy` says whether other calls are in flight (a service passes its
        `CallsInFlight.others`): a lone command then still goes to the writer thread."""
        self._database = database
        self._max_batch = max_batch
        self._busy = busy
        self._after_commit = tuple(after_commit)
        self._queue: asyncio.Queue[_Queued | None] = asyncio.Queue()
        # Its queue is part of the database's writer queue depth (see Database.instrument).
        database.add_writer_queue(self._queue.qsize)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="batch-writer")

    async def submit(
        self,
        command: Command[T],
        *,
        after_commit: Callable[[], None] | None = None,
        locks: Collection[str] = (),
    ) -> T:
        """Run `command` in the next batch; its result, or the error it raised.

        `locks` names what the command will change that another replica's batch may
        change too (say `account:<owner>:<currency>`); on PostgreSQL its batch holds
        them before any command runs. Names unknown beforehand may be left out.

        A caller that is cancelled before its batch starts is dropped from it; once
        the batch runs, the command's effect commits whether or not anyone waits, and
        so does `after_commit`, run if the command succeeded and its batch committed
        (what it did counts even if its caller went away meanwhile).
        """
        if self._closing or self._task is None:
            raise Unavailable("SHUTTING_DOWN", "the service is shutting down; retry")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        queued = _Queued(command, future, contextvars.copy_context(), after_commit, locks)
        self._queue.put_nowait(queued)
        return await future

    async def close(self) -> None:
        """Finish every command already submitted, then stop; later submits fail."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Queued] = []
            item = await self._queue.get()
            while item is not None:
                if not item.future.done():  # its caller gave up before the batch began
                    batch.append(item)
                if len(batch) >= self._max_batch or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            stopping = item is None
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Queued]) -> None:
        try:
            # A lone command has nothing to overlap with the hop to a writer thread,
            # unless other calls are in flight: run inline, its transaction would hold
            # the event loop while they wait, and the next batch would again hold the
            # one or two commands submitted meanwhile. Seen on the wallet at 32
            # concurrent transfers (strace): ~20 WAL page writes per transfer, about a
            # commit each, much of it on the loop's thread. On the writer thread the
            # loop admits calls while SQLite commits, and they join the next batch.
            inline = len(batch) == 1 and not self._busy()
            outcomes = await self._database.sync_write(lambda c: _execute(c, batch), inline=inline)
        except _BatchConflict:
            # Rolled back whole: run each command again in a transaction of its own.
            _log.info("a write batch lost a race; its commands run one by one",
                      extra={"commands": len(batch)})  # fmt: skip
            for queued in batch:
                await self._commit([queued])
            return
        except Exception as error:
            # BEGIN or COMMIT failed: nothing of this batch was written.
            _log.exception("a write batch failed to commit", extra={"commands": len(batch)})
            failure = Unavailable("DATABASE_UNAVAILABLE", "the write could not be committed")
            failure.__cause__ = error
            outcomes = [_Outcome(error=failure) for _ in batch]
        else:
            for hook in self._after_commit:
                hook()
            for queued, outcome in zip(batch, outcomes, strict=True):
                if outcome.error is None and queued.after_commit is not None:
                    queued.after_commit()
        for queued, outcome in zip(batch, outcomes, strict=True):
            if queued.future.done():
                continue
            if outcome.error is None:
                queued.future.set_result(outcome.result)
            else:
                queued.future.set_exception(outcome.error)


def _execute(connection: Connection, batch: list[_Queued]) -> list[_Outcome]:
    if connection.dialect.name == "postgresql":
        keys = sorted({_lock_key(name) for queued in batch for name in queued.locks})
        if keys:
            connection.execute(_LOCK_IN_ORDER, {"keys": keys})
    alone = len(batch) == 1
    return [queued.context.run(_attempt, connection, queued.command, alone) for queued in batch]


def _attempt(connection: Connection, command: Command[Any], alone: bool) -> _Outcome:
    # Savepoints by hand on the driver's cursor: two statements per command, where
    # `begin_nested()` costs as much again in SQLAlchemy bookkeeping.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    for attempt in range(1, _ATTEMPTS + 1):
        cursor.execute("SAVEPOINT command")
        try:
            result = command(connection)
        except BaseException as error:
            cursor.execute("ROLLBACK TO SAVEPOINT command")
            cursor.execute("RELEASE SAVEPOINT command")
            conflict = _retryable(error)
            if conflict and not alone:
                raise _BatchConflict from error
            if (isinstance(error, RunAgain) or conflict) and attempt < _ATTEMPTS:
                continue
            if conflict:
                failure = Unavailable(
                    "WRITE_CONFLICT", "the write kept losing a race with concurrent ones; retry"
                )
                failure.__cause__ = error
                return _Outcome(error=failure)
            if isinstance(error, ServiceError):
                return _Outcome(error=error)
            if not isinstance(error, Exception):
                raise
            _log.exception("a write command failed")
            return _Outcome(error=error)
        cursor.execute("RELEASE SAVEPOINT command")
        return _Outcome(result=result)
    raise AssertionError("unreachable")  # pragma: no cover


def _lock_key(name: str) -> int:
    """The advisory lock (a signed 64-bit key) for `name`. Batches take theirs in the
    order of the keys, not of the names, so two names on one key cannot form a cycle."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _retryable(error: BaseException) -> bool:
    # Wrapped by SQLAlchemy (`DBAPIError.orig`) or raised by the driver directly.
    original = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(original, "pgcode", None) or getattr(original, "sqlstate", None)
    return state in _RETRYABLE_SQLSTATES
