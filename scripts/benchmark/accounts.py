"""Users of the bench's services: the first admin, and users with open, funded wallets.

Accounts are made over gRPC from identity as any client would: sign-up, sign-in, and for
wallets the top-up by the admin once identity's event has opened them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.identity.v1 import identity_service_pb2_grpc
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.benchmark.environment import BENCH_ADMIN_EMAIL, Environment
from services.runtime.ids import new_id

__all__ = ["Account", "admin", "funded_users", "new_user", "sign_up"]

_PASSWORD = "bench password of decent length"  # noqa: S105 - throwaway bench accounts


@dataclass(frozen=True)
class Account:
    """A signed-in user."""

    user_id: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        """gRPC metadata that authenticates as this user."""
        return (("authorization", f"Bearer {self.token}"),)


async def _identity(
    env: Environment, address: str | None = None
) -> identity_service_pb2_grpc.IdentityServiceAsyncStub:
    [channel] = (await env.channels(address or await env.service("identity")))[:1]
    return identity_service_pb2_grpc.IdentityServiceStub(channel)


async def sign_up(stub: identity_service_pb2_grpc.IdentityServiceAsyncStub, email: str) -> Account:
    """Register `email` (unless it exists, when a run measures twice) and sign in."""
    try:
        await stub.RegisterUser(
            identity_pb.RegisterUserRequest(
                email=email, password=_PASSWORD, display_name="Bench", request_id=new_id()
            )
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
    login = await stub.Login(identity_pb.LoginRequest(email=email, password=_PASSWORD))
    return Account(login.user.user_id, login.tokens.access_token)


async def admin(env: Environment) -> Account:
    """The bench identity's first admin."""
    return await sign_up(await _identity(env), BENCH_ADMIN_EMAIL)


async def new_user(env: Environment) -> Account:
    """A new signed-in user (no wallet awaited)."""
    return await sign_up(await _identity(env), f"bench-{new_id()}@example.com")


async def funded_users(
    env: Environment,
    count: int,
    amount_minor: int = 10**12,
    *,
    identity_address: str | None = None,
    wallet_address: str | None = None,
) -> list[Account]:
    """`count` new users whose wallets are open and hold `amount_minor` EUR: made at the
    bench's identity and wallet, or at the ones at the addresses given."""
    identity = await _identity(env, identity_address)
    operator = await sign_up(identity, BENCH_ADMIN_EMAIL)
    users = [await sign_up(identity, f"bench-{new_id()}@example.com") for _ in range(count)]
    [channel] = (await env.channels(wallet_address or await env.service("wallet")))[:1]
    wallet = wallet_service_pb2_grpc.WalletServiceStub(channel)
    for user in users:
        for _ in range(500):  # wallets open from identity's event, asynchronously
            try:
                await wallet.CreditWallet(
                    wallet_pb.CreditWalletRequest(
                        user_id=user.user_id,
                        amount=Money(currency_code="EUR", amount_minor=amount_minor),
                        request_id=new_id(),
                    ),
                    metadata=operator.metadata,
                )
                break
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.02)
    return users
