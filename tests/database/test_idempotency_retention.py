"""Request ids are honoured for the retention period, then forgotten, oldest first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, func, select
from sqlalchemy.engine import Connection
from superapp.wallet.v1 import wallet_service_pb2 as pb

from services.database import Database
from services.database.idempotency import IdempotentWrites, idempotency_table
from tests.conftest import database_with

_METADATA = MetaData()
_KEYS = idempotency_table(_METADATA)
_DAY = timedelta(days=1)


class _Clock:
    """Time outside the system: moves only when a test says so."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    async with database_with(database_url, _METADATA) as database:
        yield database


class _Counter:
    """A mutation that counts its effects and answers with the count."""

    def __init__(self) -> None:
        self.effects = 0

    def __call__(self, connection: Connection) -> pb.CreateTransferResponse:
        self.effects += 1
        return pb.CreateTransferResponse(transaction=pb.Transaction(description=str(self.effects)))


async def _request(
    database: Database, writes: IdempotentWrites, request_id: str, mutate: _Counter
) -> str:
    command = writes.command(
        scope="user-1",
        request_id=request_id,
        method="CreateTransfer",
        request=pb.CreateTransferRequest(request_id=request_id, description="coffee"),
        response_type=pb.CreateTransferResponse,
        mutate=mutate,
    )
    return (await database.sync_write(command)).transaction.description


async def _keys(database: Database) -> int:
    async with database.read() as session:
        return int((await session.execute(select(func.count()).select_from(_KEYS))).scalar_one())


async def test_a_key_is_honoured_until_pruned_and_then_the_request_id_is_new(
    database: Database,
) -> None:
    clock = _Clock()
    writes = IdempotentWrites(database, _KEYS, clock)
    mutate = _Counter()
    assert await _request(database, writes, "old", mutate) == "1"
    clock.at += 2 * _DAY
    assert await _request(database, writes, "recent", mutate) == "2"

    assert await writes.prune(clock.now() - _DAY, limit=100) == 1

    # Within retention: replayed, no second effect.
    assert await _request(database, writes, "recent", mutate) == "2"
    # Forgotten: the same id is a new request.
    assert await _request(database, writes, "old", mutate) == "3"
    assert mutate.effects == 3


async def test_pruning_takes_the_oldest_keys_first_and_at_most_the_limit(
    database: Database,
) -> None:
    clock = _Clock()
    writes = IdempotentWrites(database, _KEYS, clock)
    mutate = _Counter()
    for number in range(5):
        await _request(database, writes, f"request-{number}", mutate)
        clock.at += timedelta(minutes=1)

    assert await writes.prune(clock.now(), limit=2) == 2
    # request-0 and request-1 were forgotten; request-2 still replays.
    assert await _request(database, writes, "request-2", mutate) == "3"
    assert await _request(database, writes, "request-0", mutate) == "6"
    assert await _keys(database) == 4


async def test_the_retention_sweeper_forgets_every_expired_key_in_batches(
    database: Database,
) -> None:
    clock = _Clock()
    writes = IdempotentWrites(database, _KEYS, clock)
    mutate = _Counter()
    for number in range(2500):  # more than two of the sweeper's batches
        await _request(database, writes, f"request-{number}", mutate)
    clock.at += 2 * _DAY
    await _request(database, writes, "kept", mutate)

    sweeper = writes.retention(_DAY, interval_seconds=3600)
    sweeper.start()
    try:
        for _ in range(600):
            if await _keys(database) == 1:
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.close()
    assert await _keys(database) == 1
    assert await _request(database, writes, "kept", mutate) == "2501"
