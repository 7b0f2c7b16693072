"""AIP-155 request ids: a retried mutation returns its first response, exactly once.

The response is stored in the same transaction as the mutation it belongs to, keyed by
(scope, request_id) where the scope is the caller, so a replay survives restarts and a
crash can never leave an effect without its record or a record without its effect.
The same id with different parameters (a different fingerprint) is refused.

Keys are honoured for a retention period (`<PREFIX>_IDEMPOTENCY_RETENTION_HOURS`, at
least a day), after which `prune` forgets them: like Stripe's keys, a request id is a
guard against retries, not a record kept forever, and every mutation adds a row with
its whole response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    Index,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    bindparam,
    select,
    tuple_,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.database.batch_writer import RunAgain
from services.database.engine import Database
from services.database.prepared import Prepared
from services.database.schema import UtcDateTime
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.sweeper import Sweeper

__all__ = ["IdempotentWrites", "fingerprint", "idempotency_table"]

R = TypeVar("R", bound=Message)
_PRUNE_BATCH = 1000


def idempotency_table(metadata: MetaData) -> Table:
    """Declare the `idempotency_keys` table on a service's metadata."""
    return Table(
        "idempotency_keys",
        metadata,
        Column("scope", String(64), nullable=False),
        Column("request_id", String(128), nullable=False),
        Column("method", String(100), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("response", LargeBinary(), nullable=False),
        Column("create_time", UtcDateTime(), nullable=False),
        PrimaryKeyConstraint("scope", "request_id"),
        # Keys are forgotten oldest first (`IdempotentWrites.prune`).
        Index("ix_idempotency_keys_create_time", "create_time"),
    )


def fingerprint(method: str, request: Message) -> str:
    """A digest of what the request asks for, without its request id.

    Deterministic serialization makes equal requests digest equally.
    """
    asked = type(request)()
    asked.CopyFrom(request)
    if "request_id" in asked.DESCRIPTOR.fields_by_name:
        asked.ClearField("request_id")
    digest = hashlib.sha256(method.encode() + b"\0" + asked.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _reused(request_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "IDEMPOTENCY_KEY_REUSED",
        "request_id was already used with different parameters",
        metadata={"request_id": request_id},
    )


def _is_unique_violation(error: Exception) -> bool:
    """Whether a raw driver error is an integrity (unique key) violation, on any driver."""
    return isinstance(error, IntegrityError) or type(error).__name__ in {
        "IntegrityError",
        "UniqueViolationError",
    }


def _replay(
    stored: Row[Any, Any, Any], method: str, digest: str, request_id: str, response_type: type[R]
) -> R:
    if (stored.method, stored.fingerprint) != (method, digest):
        raise _reused(request_id)
    return response_type.FromString(stored.response)


class IdempotentWrites:
    """Runs a mutation at most once per (scope, request_id) and replays its response."""

    def __init__(self, database: Database, table: Table, clock: Clock) -> None:
        self._database = database
        self._table = table
        self._clock = clock
        self._find = select(table.c.method, table.c.fingerprint, table.c.response).where(
            table.c.scope == bindparam("scope"), table.c.request_id == bindparam("request_id")
        )
        self._prepared_find = Prepared(self._find)
        self._prepared_insert = Prepared(table.insert(), [column.key for column in table.c])
        oldest = (
            select(table.c.scope, table.c.request_id)
            .where(table.c.create_time < bindparam("before"))
            .order_by(table.c.create_time)
            .limit(bindparam("limit"))
            # Replicas prune side by side: each takes rows the others have not locked.
            .with_for_update(skip_locked=True)
        )
        self._forget = table.delete().where(tuple_(table.c.scope, table.c.request_id).in_(oldest))

    async def prune(self, before: datetime, *, limit: int) -> int:
        """Forget up to `limit` keys recorded before `before`, oldest first; how many.

        A request id used again after its key is forgotten is a new request.
        """
        parameters = {"before": before, "limit": limit}
        return await self._database.sync_write(
            lambda connection: connection.execute(self._forget, parameters).rowcount
        )

    def retention(self, keep: timedelta, *, interval_seconds: float = 600.0) -> Sweeper:
        """A sweeper that forgets keys older than `keep`, a thousand at a time."""
        return Sweeper(
            "idempotency-retention",
            lambda: self.prune(self._clock.now() - keep, limit=_PRUNE_BATCH),
            batch=_PRUNE_BATCH,
            interval_seconds=interval_seconds,
        )

    def command(
        self,
        *,
        scope: str,
        request_id: str,
        method: str,
        request: Message,
        response_type: type[R],
        mutate: Callable[[Connection], R],
    ) -> Callable[[Connection], R]:
        """The same guarantee as `run`, as a command for `Database.sync_write`/`BatchWriter`.

        `mutate` runs on the synchronous connection of the caller's transaction; the
        response is recorded in that transaction.
        """
        digest = fingerprint(method, request)
        key = {"scope": scope, "request_id": request_id}

        def once(connection: Connection) -> R:
            stored = self._prepared_find.first(connection, key)
            if stored is not None:
                method_was, digest_was, response = stored
                if (method_was, digest_was) != (method, digest):
                    raise _reused(request_id)
                return response_type.FromString(response)
            response = mutate(connection)
            try:
                self._prepared_insert.execute(
                    connection,
                    {
                        **key,
                        "method": method,
                        "fingerprint": digest,
                        "response": response.SerializeToString(),
                        "create_time": self._clock.now(),
                    },
                )
            except Exception as error:
                # A concurrent retry of the same id committed first (PostgreSQL, or
                # another process): undo this attempt and run again, which replays it.
                if _is_unique_violation(error):
                    raise RunAgain from error
                raise
            return response

        return once

    async def run_for(
        self,
        caller_id: str,
        method: str,
        request: Any,
        response_type: type[R],
        mutate: Callable[[AsyncSession], Awaitable[R]],
    ) -> R:
        """`run`, with the caller's request ids kept apart per method: the same id sent to
        two methods names two operations. `request` carries the `request_id`."""
        return await self.run(
            scope=f"{caller_id}/{method}",
            request_id=request.request_id,
            method=method,
            request=request,
            response_type=response_type,
            mutate=mutate,
        )

    async def run(
        self,
        *,
        scope: str,
        request_id: str,
        method: str,
        request: Message,
        response_type: type[R],
        mutate: Callable[[AsyncSession], Awaitable[R]],
    ) -> R:
        """`mutate` inside a write transaction, or the stored response of an earlier run."""
        digest = fingerprint(method, request)
        for _ in range(2):
            try:
                return await self._once(scope, request_id, method, digest, response_type, mutate)
            except IntegrityError:
                # A concurrent retry of the same id committed first (PostgreSQL; SQLite's
                # single writer serialises them): the second pass replays its response.
                continue
        raise RuntimeError("idempotency record neither written nor found")  # pragma: no cover

    async def _once(
        self,
        scope: str,
        request_id: str,
        method: str,
        digest: str,
        response_type: type[R],
        mutate: Callable[[AsyncSession], Awaitable[R]],
    ) -> R:
        table = self._table
        async with self._database.write() as session:
            key = {"scope": scope, "request_id": request_id}
            stored = (await session.execute(self._find, key)).first()
            if stored is not None:
                return _replay(stored, method, digest, request_id, response_type)
            response = await mutate(session)
            await session.execute(
                table.insert().values(
                    scope=scope,
                    request_id=request_id,
                    method=method,
                    fingerprint=digest,
                    response=response.SerializeToString(),
                    create_time=self._clock.now(),
                )
            )
            return response
