"""BFF scenarios: GET balances and GET product over HTTP through the BFF, beside the same
gRPC calls made directly and a bare ASGI app served by the same uvicorn setup.

- `bff.ceiling ASGI hello`: what any HTTP request costs on this server stack.
- `bff.direct wallet.GetWallet` / `bff.direct catalogue.GetProduct`: the upstream call the
  BFF makes, made by the load generator itself (compared with the gRPC echo).
- `bff.GET /v1/me/wallet` / `bff.GET /v1/products/{id}`: the same through the BFF: HTTP
  parsing, routing, token check (for the wallet), the gRPC call, JSON out. Each is
  compared with its direct call; the BFF's own cost is the difference of the p50s at
  concurrency 1.
- `bff.GET /v1/home (wallet hung, ...)`: the home screen from a BFF whose wallet takes
  every call and never answers (a server in the bench process that reports SERVING):
  each part has its own deadline (`BFF_HOME_PART_TIMEOUT_SECONDS`, 0.3 s here), so the
  screen comes back without the wallet in about that time, not in the 5 s every other
  upstream call may take.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from scripts.benchmark.accounts import admin, funded_users, new_user
from scripts.benchmark.environment import Environment
from scripts.benchmark.http_client import HttpPool
from scripts.benchmark.rpc_scenarios import GRPC_ECHO
from scripts.benchmark.scenario import Call, ClosedLoop, Scenario, Target
from scripts.benchmark.stubborn import hung_upstream
from services.runtime.ids import new_id

__all__ = ["BFF_GET_PRODUCT", "bff_scenarios"]

ASGI_HELLO = "bff.ceiling ASGI hello"
DIRECT_GET_WALLET = "bff.direct wallet.GetWallet"
DIRECT_GET_PRODUCT = "bff.direct catalogue.GetProduct"
BFF_GET_PRODUCT = "bff.GET /v1/products/{id}"
_PART_TIMEOUT_SECONDS = 0.3


class _WholeHome(Exception):
    """The home screen came back with its wallet, or without the wallet's deadline."""

    kind = "WALLET_NOT_CUT_OFF"


async def _http(
    env: Environment, address: str, path: str, token: str = "", upstreams: Sequence[str] = ()
) -> ClosedLoop:
    """GET `path` from the HTTP server at `address`, which serves it with `upstreams`."""
    host, port = address.rsplit(":", 1)
    pool = HttpPool(host, int(port))
    env.on_close(pool.close)
    request = pool.request(path, {"Authorization": f"Bearer {token}"} if token else None)
    return ClosedLoop([partial(pool.send, request)], env.processes(address, *upstreams))


async def _hello(env: Environment) -> ClosedLoop:
    return await _http(env, await env.asgi_hello(), "/")


async def _direct_get_wallet(env: Environment) -> ClosedLoop:
    [user] = await funded_users(env, 1)
    request = wallet_pb.GetWalletRequest(user_id=user.user_id)
    address = await env.service("wallet")
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = wallet_service_pb2_grpc.WalletServiceStub(channel)
        calls.append(
            partial(stub.GetWallet, request, metadata=user.metadata, timeout=env.call_timeout)
        )
    return ClosedLoop(calls, env.processes(address))


async def _bff_get_wallet(env: Environment) -> ClosedLoop:
    [user] = await funded_users(env, 1)
    wallet = await env.service("wallet")
    return await _http(env, await env.bff(), "/v1/me/wallet", user.token, [wallet])


async def _published_product(env: Environment) -> str:
    """A product on sale, created by the admin (who may sell, as merchants do)."""
    operator = await admin(env)
    [channel] = (await env.channels(await env.service("catalogue")))[:1]
    stub = catalogue_service_pb2_grpc.CatalogueServiceStub(channel)
    created = await stub.CreateProduct(
        catalogue_pb.CreateProductRequest(
            product=catalogue_pb.Product(
                title="Bench mug",
                description="A mug that is read a great many times.",
                price=Money(currency_code="EUR", amount_minor=1250),
                attributes={"colour": "blue", "material": "stoneware"},
            ),
            request_id=new_id(),
        ),
        metadata=operator.metadata,
    )
    product_id = created.product.product_id
    await stub.AdjustStock(
        catalogue_pb.AdjustStockRequest(
            product_id=product_id, delta=100, reason="bench", request_id=new_id()
        ),
        metadata=operator.metadata,
    )
    await stub.PublishProduct(
        catalogue_pb.PublishProductRequest(product_id=product_id, request_id=new_id()),
        metadata=operator.metadata,
    )
    return product_id


async def _direct_get_product(env: Environment) -> ClosedLoop:
    request = catalogue_pb.GetProductRequest(product_id=await _published_product(env))
    address = await env.service("catalogue")
    calls: list[Call] = []
    for channel in await env.channels(address):
        stub = catalogue_service_pb2_grpc.CatalogueServiceStub(channel)
        calls.append(partial(stub.GetProduct, request, timeout=env.call_timeout))
    return ClosedLoop(calls, env.processes(address))


async def _bff_get_product(env: Environment) -> ClosedLoop:
    product_id = await _published_product(env)
    catalogue = await env.service("catalogue")
    return await _http(env, await env.bff(), f"/v1/products/{product_id}", upstreams=[catalogue])


async def _home_with_a_hung_part(env: Environment) -> ClosedLoop:
    wallet = await env.enter(hung_upstream())
    address = await env.bff(
        {
            "BFF_WALLET_ADDR": wallet,
            "BFF_HOME_PART_TIMEOUT_SECONDS": str(_PART_TIMEOUT_SECONDS),
        }
    )
    user = await new_user(env)
    host, port = address.rsplit(":", 1)
    pool = HttpPool(host, int(port))
    env.on_close(pool.close)
    request = pool.request("/v1/home", {"Authorization": f"Bearer {user.token}"})

    async def home() -> None:
        if b'"DEADLINE_EXCEEDED"' not in await pool.send(request):
            raise _WholeHome

    # The parts that answer: the profile from identity, products from the catalogue.
    upstreams = [await env.service("identity"), await env.service("catalogue")]
    return ClosedLoop([home], env.processes(address, *upstreams))


def bff_scenarios() -> list[Scenario]:
    """The ASGI ceiling, the direct calls (against the echo), the BFF against them, and
    the home screen with a hung part against its deadline."""
    return [
        Scenario(ASGI_HELLO, _hello),
        Scenario(DIRECT_GET_WALLET, _direct_get_wallet, ceiling=GRPC_ECHO),
        Scenario("bff.GET /v1/me/wallet", _bff_get_wallet, ceiling=DIRECT_GET_WALLET),
        Scenario(DIRECT_GET_PRODUCT, _direct_get_product, ceiling=GRPC_ECHO),
        Scenario(BFF_GET_PRODUCT, _bff_get_product, ceiling=DIRECT_GET_PRODUCT),
        Scenario(
            f"bff.GET /v1/home (wallet hung, part deadline {_PART_TIMEOUT_SECONDS:g} s)",
            _home_with_a_hung_part,
            target=Target(
                "p99",
                at_least=_PART_TIMEOUT_SECONDS * 1000,
                at_most=2000,
                source="the part's own deadline, not the 5 s of other calls",
            ),
        ),
    ]
