"""AIP-155 request ids: a retried mutation returns its first response, exactly once.

The response is stored in the same transaction as the mutation it belongs to, keyed by
(scope, request_id) where the scope is the caller, so a replay survives restarts and a
crash can never leave an effect without its record or a record without its effect.
The same id with different parameters (a different fingerprint) is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.database.engine import Database
from services.database.schema import UtcDateTime
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition

__all__ = ["IdempotentWrites", "fingerprint", "idempotency_table"]

R = TypeVar("R", bound=Message)


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


def _replay(
    stored: Row[Any, Any, Any], method: str, digest: str, request_id: str, response_type: type[R]
) -> R:
    if (stored.method, stored.fingerprint) != (method, digest):
        raise FailedPrecondition(
            "IDEMPOTENCY_KEY_REUSED",
            "request_id was already used with different parameters",
            metadata={"request_id": request_id},
        )
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
            for _ in range(2):
                stored = connection.execute(self._find, key).first()
                if stored is not None:
                    return _replay(stored, method, digest, request_id, response_type)
                attempt = connection.begin_nested()
                try:
                    response = mutate(connection)
                    connection.execute(
                        self._table.insert(),
                        {
                            **key,
                            "method": method,
                            "fingerprint": digest,
                            "response": response.SerializeToString(),
                            "create_time": self._clock.now(),
                        },
                    )
                except IntegrityError:
                    attempt.rollback()
                    # A concurrent retry of the same id committed first (PostgreSQL, or
                    # another process): replay it; any other conflict is the mutation's.
                    if connection.execute(self._find, key).first() is None:
                        raise
                    continue
                except BaseException:
                    attempt.rollback()
                    raise
                attempt.commit()
                return response
            raise RuntimeError("idempotency record neither written nor found")  # pragma: no cover

        return once

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
