"""Wallet scenarios: the ledger's write path beside raw sqlite3 and naive SQLAlchemy, and
the Transfer RPC beside the bare gRPC echo.

The three write paths run in the bench process on their own SQLite files (so the bench
process is their server side, for CPU time per call):
- `ledger.write raw sqlite3` (ceiling): the transfer-shaped transaction the design
  notes measured (BEGIN IMMEDIATE, SELECT, INSERT, 2x UPDATE, COMMIT) on one thread.
- `ledger.write naive`: the same statements one at a time through SQLAlchemy async +
  aiosqlite, each transaction on its own; compared with raw sqlite3.
- `ledger.write batched`: the wallet's real command (replay check, wallet check, hold
  expiry, conditional debit, upsert credit, transaction, postings, outbox event, stored
  response) through its `BatchWriter`; compared with the naive path. It does more work
  per transfer than the other two.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.benchmark.accounts import funded_users
from scripts.benchmark.environment import Environment
from scripts.benchmark.metrics_off import METRICS_COST, metrics_off_settings
from scripts.benchmark.process_cpu import Processes
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import ClosedLoop, Sample, Scenario, Target, Window, server_meter
from services.database import Database, open_database
from services.database.batch_writer import BatchWriter
from services.database.idempotency import IdempotentWrites
from services.eventbus import Outbox
from services.runtime.clock import SystemClock
from services.runtime.ids import new_id
from services.wallet.holds import Holds
from services.wallet.ledger import Ledger
from services.wallet.models import EVENT_TABLES, IDEMPOTENCY_KEYS
from services.wallet.transfers import Transfers, check_limit

__all__ = ["wallet_scenarios"]

RAW = "ledger.write raw sqlite3"
NAIVE = "ledger.write naive SQLAlchemy async"
CREATE_TRANSFER = "wallet.CreateTransfer"
_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "wallet" / "migrations"
_ACCOUNTS = 16

_SHAPE = """
CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY, source INTEGER, target INTEGER, amount INTEGER
);
"""


def _shaped_file(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(_SHAPE)
    connection.executemany(
        "INSERT INTO accounts VALUES (?, ?)", [(i, 10**12) for i in range(_ACCOUNTS)]
    )
    connection.close()


@dataclass
class _RawSqlite:
    """The transfer-shaped transaction with the stdlib driver, one thread, no asyncio."""

    path: Path

    def _run(self, window: Window) -> Sample:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")
        pairs = itertools.cycle(itertools.permutations(range(_ACCOUNTS), 2))

        def transfer() -> None:
            source, target = next(pairs)
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("SELECT balance FROM accounts WHERE id = ?", (source,)).fetchone()
            connection.execute(
                "INSERT INTO transfers (source, target, amount) VALUES (?, ?, 1)",
                (source, target),
            )
            connection.execute("UPDATE accounts SET balance = balance - 1 WHERE id = ?", (source,))
            connection.execute("UPDATE accounts SET balance = balance + 1 WHERE id = ?", (target,))
            connection.execute("COMMIT")

        sample = Sample()
        end_warmup = time.perf_counter() + window.warmup
        while time.perf_counter() < end_warmup:
            transfer()
        stop = server_meter(Processes.this_process()).start()
        start = time.perf_counter()
        while (began := time.perf_counter()) - start < window.duration:
            transfer()
            sample.latencies.append(time.perf_counter() - began)
        sample.elapsed = time.perf_counter() - start
        sample.cpu = stop()
        connection.close()
        return sample

    async def measure(self, concurrency: int, window: Window) -> Sample:
        return await asyncio.to_thread(self._run, window)


async def _raw(env: Environment) -> _RawSqlite:
    path = env.work_dir / "ledger-raw.db"
    _shaped_file(path)
    return _RawSqlite(path)


async def _naive(env: Environment) -> ClosedLoop:
    path = env.work_dir / "ledger-naive.db"
    _shaped_file(path)
    database = Database.connect(f"sqlite+aiosqlite:///{path}")
    env.on_close(database.dispose)
    pairs = itertools.cycle(itertools.permutations(range(_ACCOUNTS), 2))
    select_balance = text("SELECT balance FROM accounts WHERE id = :id")
    insert = text("INSERT INTO transfers (source, target, amount) VALUES (:s, :t, 1)")
    debit = text("UPDATE accounts SET balance = balance - 1 WHERE id = :id")
    credit = text("UPDATE accounts SET balance = balance + 1 WHERE id = :id")

    async def transfer() -> None:
        source, target = next(pairs)
        async with database.write() as session:
            (await session.execute(select_balance, {"id": source})).scalar_one()
            await session.execute(insert, {"s": source, "t": target})
            await session.execute(debit, {"id": source})
            await session.execute(credit, {"id": target})

    return ClosedLoop([transfer], server=Processes.this_process())


async def _batched(env: Environment) -> ClosedLoop:
    database = await open_database(
        f"sqlite+aiosqlite:///{env.work_dir / 'ledger-batched.db'}", _MIGRATIONS, setting="bench"
    )
    clock = SystemClock()
    outbox = Outbox(EVENT_TABLES, "superapp.wallet", clock)
    writer = BatchWriter(database, after_commit=[outbox.wake])
    writer.start()

    async def release() -> None:
        await writer.close()
        await database.dispose()

    env.on_close(release)
    ledger = Ledger(database.dialect)

    def limit_for(_currency: str) -> int:
        return 10**14

    holds = Holds(database, ledger, outbox, clock, lambda c, a: check_limit(limit_for, c, a))
    transfers = Transfers(ledger, holds, outbox, clock, limit_for)
    writes = IdempotentWrites(database, IDEMPOTENCY_KEYS, clock)
    users = [new_id() for _ in range(_ACCOUNTS)]
    async with database.write() as session:
        for user in users:
            await session.execute(
                text("INSERT INTO wallets (user_id, create_time) VALUES (:u, :t)"),
                {"u": user, "t": clock.now()},
            )
    for user in users:

        def fund(connection: Connection, user: str = user) -> object:
            return transfers.credit(
                connection,
                user_id=user,
                currency_code="EUR",
                amount_minor=10**13,
                description="",
                request_id=new_id(),
            )

        await writer.submit(fund)
    pairs = itertools.cycle(itertools.permutations(users, 2))

    async def transfer() -> None:
        source, target = next(pairs)
        request = pb.CreateTransferRequest(
            from_user_id=source,
            to_user_id=target,
            amount=Money(currency_code="EUR", amount_minor=1),
            request_id=new_id(),
        )

        def move(connection: Connection) -> pb.CreateTransferResponse:
            transfers.transfer(
                connection,
                from_user_id=source,
                to_user_id=target,
                currency_code="EUR",
                amount_minor=1,
                description="",
                request_id=request.request_id,
            )
            return pb.CreateTransferResponse()

        await writer.submit(
            writes.command(
                scope=source,
                request_id=request.request_id,
                method="CreateTransfer",
                request=request,
                response_type=pb.CreateTransferResponse,
                mutate=move,
            )
        )

    return ClosedLoop([transfer], server=Processes.this_process())


def _transfer_rpc(*, metrics: bool) -> Callable[[Environment], Awaitable[ClosedLoop]]:
    async def setup(env: Environment) -> ClosedLoop:
        if metrics:
            nats_url = env.nats_url()
            address = await env.service("wallet")
            users = await funded_users(env, 8)
        else:
            settings = await metrics_off_settings(env, "wallet")
            nats_url = settings["WALLET_NATS_URL"]
            address = await env.service("wallet", settings)
            users = await funded_users(
                env,
                8,
                identity_address=settings["WALLET_IDENTITY_ADDR"],
                wallet_address=address,
            )
        pairs = itertools.cycle(itertools.permutations(users, 2))
        calls = []
        for channel in await env.channels(address):
            stub = wallet_service_pb2_grpc.WalletServiceStub(channel)

            async def transfer(
                stub: wallet_service_pb2_grpc.WalletServiceAsyncStub = stub,
            ) -> None:
                source, target = next(pairs)
                await stub.CreateTransfer(
                    pb.CreateTransferRequest(
                        from_user_id=source.user_id,
                        to_user_id=target.user_id,
                        amount=Money(currency_code="EUR", amount_minor=1),
                        request_id=new_id(),
                    ),
                    metadata=source.metadata,
                    timeout=env.call_timeout,
                )

            calls.append(transfer)
        # The relay publishes from the wallet's child process, through NATS: both are
        # part of what a transfer costs. (The other services' relays are idle meanwhile.)
        return ClosedLoop(calls, server=env.processes(address, nats_url=nats_url))

    return setup


def wallet_scenarios() -> list[Scenario]:
    """The ledger's write path against naive and raw, and Transfer against the echo."""
    return [
        Scenario(RAW, _raw),
        Scenario(NAIVE, _naive, ceiling=RAW),
        Scenario("ledger.write batched (wallet command)", _batched, ceiling=NAIVE),
        Scenario(
            CREATE_TRANSFER,
            _transfer_rpc(metrics=True),
            ceiling=GRPC_ECHO,
            target=Target("cpu vs echo", at_most=3, source="with its relay child and NATS's share"),
        ),
        Scenario(
            f"{CREATE_TRANSFER} (metrics off)",
            _transfer_rpc(metrics=False),
            ceiling=CREATE_TRANSFER,
            target=METRICS_COST,
        ),
    ]
