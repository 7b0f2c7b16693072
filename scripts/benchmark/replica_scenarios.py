"""Replica scenarios: GetProduct and CreateTransfer on PostgreSQL, served by one process
of the service and by two, side by side in one run (opt-in: `scripts/bench --only pg.`).

They run in a deployment of their own, as at scale: its own nats-server, an identity
and the two services each on a fresh PostgreSQL database (`SUPERAPP_BENCH_POSTGRES_URL`,
default the local server), two processes per service on their own ports sharing it.
The client spreads calls over the processes as every caller of ours does: a
`round_robin` channel from `services.runtime.channels` on an `ipv4:a,b` target (one
connection per replica, whatever `--channels` says); with one replica its target names
one address. The two-replica scenario is compared with the one-replica one (its ratio
is the speed-up), which is compared with the echo.

The catalogue is seeded as for the SQLite scenarios. Transfers run between 64 users
(`SUPERAPP_BENCH_PG_USERS`) in a shuffled order of pairs. Two replicas' batches of
transfers still share accounts, and queue on them (see `BatchWriter`): at concurrency
32 each batch holds some 16 transfers, 32 of the 64 accounts.

Beside the servers, each window reads the load generator (this process), PostgreSQL's
processes that serve this run and the machine's cores as a whole, so the table says
what ran out when the second replica adds less than the first.
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.benchmark.accounts import funded_users
from scripts.benchmark.catalogue_scenarios import product_count
from scripts.benchmark.catalogue_seed import seed_catalogue
from scripts.benchmark.environment import Environment
from scripts.benchmark.process_cpu import CpuSource, Machine
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import ClosedLoop, Scenario
from services.runtime.channels import open_channel
from services.runtime.ids import new_id

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi
    from superapp.catalogue.v1.catalogue_service_pb2_grpc import CatalogueServiceAsyncStub
    from superapp.wallet.v1.wallet_service_pb2_grpc import WalletServiceAsyncStub

__all__ = ["replica_scenarios"]

_DEPLOYMENT = "postgresql"
_USERS_SETTING = "SUPERAPP_BENCH_PG_USERS"
_CATALOGUE = catalogue_pb.DESCRIPTOR.services_by_name["CatalogueService"]
_WALLET = wallet_pb.DESCRIPTOR.services_by_name["WalletService"]


def _users() -> int:
    """How many users the transfers run between (64 unless set: fewer for quick runs)."""
    return int(os.environ.get(_USERS_SETTING, "64"))


def _name(method: str, replicas: int) -> str:
    return f"pg.{method} {replicas} replica" + ("s" if replicas > 1 else "")


async def _settings(env: Environment, service: str) -> dict[str, str]:
    """`service`'s settings in the PostgreSQL deployment: its NATS, identity, database."""
    nats = env.nats_url(_DEPLOYMENT)
    identity = await env.service(
        "identity",
        {
            "IDENTITY_NATS_URL": nats,
            "IDENTITY_DATABASE_URL": await env.postgres_database("identity"),
        },
    )
    prefix = f"{service.upper()}_"
    return {
        f"{prefix}NATS_URL": nats,
        f"{prefix}IDENTITY_ADDR": identity,
        f"{prefix}DATABASE_URL": await env.postgres_database(service),
    }


async def _replicas(env: Environment, service: str, count: int) -> list[str]:
    """The addresses of `count` processes of `service`, started one after another (the
    first applies the migrations)."""
    settings = await _settings(env, service)
    return [await env.service(service, settings, replica=n) for n in range(1, count + 1)]


def _balanced(
    env: Environment, addresses: list[str], service: ServiceDescriptor
) -> grpc.aio.Channel:
    channel = open_channel(
        "ipv4:" + ",".join(addresses), [service], timeout_seconds=env.call_timeout
    )
    env.on_close(lambda: channel.close(None))
    return channel


async def _beside(env: Environment) -> dict[str, CpuSource]:
    beside: dict[str, CpuSource] = {"machine": Machine()}
    postgres = await env.postgres_processes()
    if postgres is not None:
        beside["postgresql"] = postgres
    return beside


def _get_product(replicas: int) -> Callable[[Environment], Awaitable[ClosedLoop]]:
    async def setup(env: Environment) -> ClosedLoop:
        seeded = await seed_catalogue(await env.postgres_database("catalogue"), product_count())
        addresses = await _replicas(env, "catalogue", replicas)
        stub: CatalogueServiceAsyncStub = catalogue_service_pb2_grpc.CatalogueServiceStub(
            _balanced(env, addresses, _CATALOGUE)
        )
        requests = itertools.cycle(
            [catalogue_pb.GetProductRequest(product_id=i) for i in seeded.product_ids]
        )

        async def get() -> object:
            return await stub.GetProduct(next(requests), timeout=env.call_timeout)

        return ClosedLoop([get], env.processes(*addresses), await _beside(env))

    return setup


def _create_transfer(replicas: int) -> Callable[[Environment], Awaitable[ClosedLoop]]:
    async def setup(env: Environment) -> ClosedLoop:
        addresses = await _replicas(env, "wallet", replicas)
        identity = (await _settings(env, "wallet"))["WALLET_IDENTITY_ADDR"]
        users = await funded_users(
            env, _users(), identity_address=identity, wallet_address=addresses[0]
        )
        pairs = list(itertools.permutations(users, 2))
        random.Random(replicas).shuffle(pairs)  # noqa: S311 - an order, not a secret
        cycle = itertools.cycle(pairs)
        stub: WalletServiceAsyncStub = wallet_service_pb2_grpc.WalletServiceStub(
            _balanced(env, addresses, _WALLET)
        )

        async def transfer() -> object:
            source, target = next(cycle)
            return await stub.CreateTransfer(
                wallet_pb.CreateTransferRequest(
                    from_user_id=source.user_id,
                    to_user_id=target.user_id,
                    amount=Money(currency_code="EUR", amount_minor=1),
                    request_id=new_id(),
                ),
                metadata=source.metadata,
                timeout=env.call_timeout,
            )

        nats = env.nats_url(_DEPLOYMENT)
        server = env.processes(*addresses, nats_url=nats)
        return ClosedLoop([transfer], server, await _beside(env))

    return setup


def replica_scenarios() -> list[Scenario]:
    """Each path with one replica (against the echo) and two (against one); opt-in."""
    scenarios = []
    for method, setup in (
        ("catalogue.GetProduct", _get_product),
        ("wallet.CreateTransfer", _create_transfer),
    ):
        one = _name(method, 1)
        scenarios += [
            Scenario(one, setup(1), ceiling=GRPC_ECHO, opt_in=True),
            Scenario(_name(method, 2), setup(2), ceiling=one, opt_in=True),
        ]
    return scenarios
