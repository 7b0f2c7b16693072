"""Wallet on the parametrised database, identity beside it, and users with wallets.

Users are signed up through identity; their wallets open the way production opens
them, from identity's `UserRegistered` event over the test NATS server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.nats_process import NatsProcess
from services.database import Database
from services.runtime.ids import new_id
from services.runtime.serving import GrpcService
from services.wallet.config import WalletSettings
from services.wallet.server import create_server
from tests.identity.conftest import ADMIN_EMAIL, Identity, running_identity

Metadata = tuple[tuple[str, str], ...]


@dataclass
class Account:
    """A signed-up user whose wallet is open, and the metadata that authenticates as them."""

    user_id: str
    auth: Metadata


@dataclass
class Bank:
    """A running wallet service with identity, and helpers to act on it."""

    identity: Identity
    database_url: str
    settings: WalletSettings
    tracer_provider: TracerProvider
    service: GrpcService
    channel: grpc.aio.Channel
    admin: Account = field(init=False)

    @property
    def stub(self) -> wallet_service_pb2_grpc.WalletServiceStub:
        return wallet_service_pb2_grpc.WalletServiceStub(self.channel)

    async def user(self, name: str = "user") -> Account:
        """A new user whose wallet has been opened by the event."""
        user, auth = await self.identity.signed_up(f"{name}-{new_id()}@example.com")
        account = Account(user.user_id, auth)
        await self.wallet_of(account)
        return account

    async def wallet_of(self, account: Account) -> pb.Wallet:
        """The account's wallet, waiting for the asynchronous opening if needed."""
        request = pb.GetWalletRequest(user_id=account.user_id)
        deadline = asyncio.get_running_loop().time() + 15.0
        while True:
            try:
                reply = await self.stub.GetWallet(request, metadata=account.auth)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
            else:
                return reply.wallet

    async def balance(self, account: Account, currency: str = "EUR") -> tuple[int, int]:
        """(available, held) of the account's `currency`, (0, 0) if it has none."""
        wallet = await self.wallet_of(account)
        for balance in wallet.balances:
            if balance.currency_code == currency:
                return balance.available_minor, balance.held_minor
        return 0, 0

    async def fund(self, account: Account, amount_minor: int, currency: str = "EUR") -> None:
        """Top the account up as the admin."""
        await self.stub.CreditWallet(
            pb.CreditWalletRequest(
                user_id=account.user_id,
                amount=Money(currency_code=currency, amount_minor=amount_minor),
                request_id=new_id(),
            ),
            metadata=self.admin.auth,
        )

    async def transfer(self, source: Account, target: Account, amount_minor: int) -> pb.Transaction:
        """Send `amount_minor` EUR from `source` to `target`, as `source`; the transaction."""
        reply = await self.stub.CreateTransfer(
            pb.CreateTransferRequest(
                from_user_id=source.user_id,
                to_user_id=target.user_id,
                amount=Money(currency_code="EUR", amount_minor=amount_minor),
                request_id=new_id(),
            ),
            metadata=source.auth,
        )
        return reply.transaction

    async def restart(self) -> None:
        """Stop the wallet service and start it again on the same database."""
        await self.channel.close()
        await self.service.stop(5)
        self.service = await create_server(self.settings, self.tracer_provider)
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.service.port}")

    async def rewrite(self, sql: str, **parameters: Any) -> None:
        """Change the wallet's database directly: to set up a state no RPC reaches quickly."""
        database = Database.connect(self.database_url)
        try:
            async with database.write() as session:
                await session.execute(text(sql), parameters)
        finally:
            await database.dispose()

    async def scalar(self, sql: str, **parameters: Any) -> Any:
        """One value read straight from the wallet's database (for invariants)."""
        database = Database.connect(self.database_url)
        try:
            async with database.read() as session:
                return (await session.execute(text(sql), parameters)).scalar_one()
        finally:
            await database.dispose()


def eur(amount_minor: int) -> Money:
    return Money(currency_code="EUR", amount_minor=amount_minor)


@contextlib.asynccontextmanager
async def running_bank(
    database_url: str,
    data_dir: Path,
    tracer_provider: TracerProvider,
    nats_url: str,
    **overrides: Any,
) -> AsyncIterator[Bank]:
    """Identity (on SQLite) and wallet (on `database_url`) on port 0, and the first admin."""
    async with running_identity(
        f"sqlite+aiosqlite:///{data_dir / 'identity.db'}",
        data_dir / "identity",
        tracer_provider,
        nats_url,
    ) as identity:
        settings = WalletSettings(
            port=0,
            relay="task",
            data_dir=data_dir / "wallet",
            database_url=database_url,
            nats_url=nats_url,
            identity_addr=f"127.0.0.1:{identity.service.port}",
            health_probe_seconds=0.2,
            hold_sweep_seconds=0.1,
            **overrides,
        )
        service = await create_server(settings, tracer_provider)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        bank = Bank(identity, database_url, settings, tracer_provider, service, channel)
        try:
            admin, auth = await identity.signed_up(ADMIN_EMAIL)
            bank.admin = Account(admin.user_id, auth)
            yield bank
        finally:
            await bank.channel.close()
            await bank.service.stop(0)


@pytest.fixture
async def bank(
    database_url: str, tmp_path: Path, tracer_provider: TracerProvider, own_nats: NatsProcess
) -> AsyncIterator[Bank]:
    """The wallet service on every database backend, with identity and an admin."""
    async with running_bank(database_url, tmp_path, tracer_provider, own_nats.url) as bank:
        yield bank
