"""Orders in-process with the services it calls and the BFF, on each database backend.

Orders' own database is the parametrised one (a SQLite file, then a fresh PostgreSQL
database); identity, wallet and catalogue run on SQLite files, their PostgreSQL legs
being their own tests' business. One platform per module and backend; tests stay
independent by using their own merchants, products and buyers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from superapp.orders.v1 import orders_service_pb2 as pb
from superapp.orders.v1 import orders_service_pb2_grpc
from superapp.type.v1.money_pb2 import Money

from scripts.nats_process import NatsProcess
from services.runtime.clock import Clock
from tests.bff.conftest import (
    Platform,
    Session,
    admin_session,
    merchant_session,
    product_on_sale,
    running_platform,
    serving_bff,
    sign_up,
    top_up,
    wallet_of,
)
from tests.conftest import _create_postgres_database, _drop_postgres_database

__all__ = ["Shop", "metadata_of", "open_shop", "orders_platform"]


_IDLE_MINIAPPS = {
    "check_interval_seconds": 60,
    "settle_interval_seconds": 60,
    "webhook_interval_seconds": 60,
}


@contextlib.asynccontextmanager
async def orders_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    wallet_clock: Clock | None = None,
    **orders_settings: Any,
) -> AsyncIterator[Platform]:
    """The platform with orders on the backend `request.param` names, and a BFF; the
    wallet on `wallet_clock`'s time if given."""
    data_dir = tmp_path_factory.mktemp("orders")
    url = None if request.param == "sqlite" else await _create_postgres_database()
    try:
        with NatsProcess(data_dir / "nats") as nats_server:
            async with (
                running_platform(
                    data_dir,
                    TracerProvider(),
                    nats_server.url,
                    orders_database_url=url,
                    wallet_clock=wallet_clock,
                    # Orders' tests give miniapps no work and take no database away:
                    # its loops and every service's health probe polling each 0.2 s
                    # were a good share of these modules' CPU. The services' own
                    # defaults (5 s probes) and miniapps' slowest loops will do.
                    health_probe_seconds=5.0,
                    miniapps_settings=_IDLE_MINIAPPS,
                    **orders_settings,
                ) as platform,
                serving_bff(platform.bff_settings) as base_url,
            ):
                platform.base_url = base_url
                yield platform
    finally:
        if url is not None:
            await _drop_postgres_database(url)


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
async def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """The platform, orders on each backend in turn."""
    async with orders_platform(request, tmp_path_factory) as it:
        yield it


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the platform's BFF."""
    async with platform.client() as http:
        yield http


def metadata_of(session: Session) -> tuple[tuple[str, str]]:
    """gRPC metadata authenticating as `session`'s user."""
    return (("authorization", f"Bearer {session.access_token}"),)


@dataclass
class Shop:
    """A merchant with one product on sale and a buyer with 1,000 minor units."""

    platform: Platform
    http: httpx.AsyncClient
    merchant: Session
    buyer: Session
    product: dict[str, Any]
    channel: grpc.aio.Channel

    @property
    def orders(self) -> orders_service_pb2_grpc.OrdersServiceStub:
        return orders_service_pb2_grpc.OrdersServiceStub(self.channel)

    def create_request(self, quantity: int, request_id: str) -> pb.CreateOrderRequest:
        price = self.product["price"]
        return pb.CreateOrderRequest(
            product_id=self.product["product_id"],
            quantity=quantity,
            unit_price=Money(
                currency_code=price["currency_code"], amount_minor=price["amount_minor"]
            ),
            request_id=request_id,
        )

    async def buy(self, request: pb.CreateOrderRequest) -> pb.CreateOrderResponse:
        """CreateOrder as the buyer, retried with the same request while it is ABORTED
        `ORDER_IN_PROGRESS`, as a client does: on a loaded machine the reconciler may
        take an order over mid-call (its driver's lease ran out)."""
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            try:
                reply: pb.CreateOrderResponse = await self.orders.CreateOrder(
                    request, metadata=metadata_of(self.buyer)
                )
                return reply
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise
                assert asyncio.get_running_loop().time() < deadline, "the order never settled"
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def open_shop(
    platform: Platform, http: httpx.AsyncClient, *, price_minor: int = 300, stock: int = 4
) -> AsyncIterator[Shop]:
    """A fresh merchant, product and funded buyer, and a gRPC channel to orders."""
    merchant = await merchant_session(http, platform)
    await wallet_of(http, merchant)
    product = await product_on_sale(http, merchant, price_minor=price_minor, stock=stock)
    buyer = await sign_up(http, "buyer")
    await wallet_of(http, buyer)
    await top_up(http, await admin_session(http), buyer, 1_000)
    channel = grpc.aio.insecure_channel(platform.orders.address)
    try:
        yield Shop(platform, http, merchant, buyer, product, channel)
    finally:
        await channel.close()
