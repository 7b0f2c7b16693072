"""An order interrupted after any step ends in a terminal state that tells the truth.

For each step of the saga, three ways to break it right after the step succeeded:
(a) the peer the next step needs stops, (b) the caller goes away (its call is cancelled),
(c) the orders service itself stops and is started again on the same database. Then the
peer comes back and the reconciler runs. Afterwards: money is conserved (buyer plus
merchant hold what the buyer had), no stock is stuck reserved or oversold, the units are
sold once or not at all, the order's status and timeline agree with that, and the
client's retry with the same key returns the same order (and, if it was cancelled,
buys with its next attempt: exactly one sale in the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import select
from superapp.orders.v1 import orders_service_pb2 as pb

from services.database import Database
from services.orders.models import EVENT_TABLES
from services.orders.server import create_server as create_orders
from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Service, available, stock_of, wallet_of
from tests.orders.conftest import Shop, metadata_of, open_shop

pytestmark = pytest.mark.slow(seconds=30)

STEPS = ["reserve", "hold", "commit", "capture"]
_TERMINAL = (pb.ORDER_STATUS_COMPLETED, pb.ORDER_STATUS_CANCELLED, pb.ORDER_STATUS_REVERSED)
_PRICE, _QUANTITY, _FUNDS, _STOCK = 300, 2, 1_000, 4


def _next_peer(platform: Platform, step: str) -> Service:
    """The service the step after `step` calls: the one to stop."""
    return platform.catalogue if step == "hold" else platform.wallet


async def _settled(shop: Shop, order_id: str) -> pb.Order:
    """The order once it is terminal (the reconciler drives it there)."""
    for _ in range(600):
        with contextlib.suppress(grpc.aio.AioRpcError):  # orders may be restarting
            reply = await shop.orders.GetOrder(
                pb.GetOrderRequest(order_id=order_id), metadata=metadata_of(shop.buyer)
            )
            if reply.order.status in _TERMINAL:
                return reply.order
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} never settled")


async def _order_of(shop: Shop, key: str) -> str:
    """The id of the buyer's order made with `key` (newest orders first)."""
    for _ in range(100):
        with contextlib.suppress(grpc.aio.AioRpcError):
            page = await shop.orders.ListOrders(
                pb.ListOrdersRequest(buyer_id=shop.buyer.user_id),
                metadata=metadata_of(shop.buyer),
            )
            for order in page.orders:
                if order.request_id == key:
                    return order.order_id
        await asyncio.sleep(0.05)
    raise AssertionError("no order was made")


async def _assert_truthful(shop: Shop, order: pb.Order) -> None:
    """Money conserved, stock consistent, the status and timeline telling the truth."""
    http = shop.http
    buyer = available(await _wallet(http, shop, shop.buyer))
    merchant = available(await _wallet(http, shop, shop.merchant))
    stock = await stock_of(http, shop.product["product_id"])
    sold = _QUANTITY if order.status in (pb.ORDER_STATUS_COMPLETED,) else 0
    paid = _PRICE * _QUANTITY if order.status == pb.ORDER_STATUS_COMPLETED else 0
    assert buyer == (_FUNDS - paid, 0), order
    assert merchant == (paid, 0), order
    assert stock == {
        "stocked_quantity": _STOCK - sold,
        "reserved_quantity": 0,
        "available_quantity": _STOCK - sold,
    }, order
    lines = [(s.name, s.outcome) for s in order.timeline if s.attempt == order.attempt]
    if order.status == pb.ORDER_STATUS_COMPLETED:
        assert lines[-1] == ("capture", pb.STEP_OUTCOME_SUCCEEDED), order
        assert order.transaction_id
    else:
        assert order.status == pb.ORDER_STATUS_CANCELLED, order
        assert ("commit", pb.STEP_OUTCOME_SUCCEEDED) not in lines, order
        assert lines[-1][1] == pb.STEP_OUTCOME_SUCCEEDED, order
        assert lines[-1][0] in ("release", "void"), order
        assert order.failure_reason
        assert not order.transaction_id


async def _wallet(http: httpx.AsyncClient, shop: Shop, session: Any) -> Any:
    for _ in range(100):
        reply = await http.get("/v1/me/wallet", headers=session.auth)
        if reply.status_code == 200:
            return reply.json()
        await asyncio.sleep(0.1)
    return await wallet_of(http, session)


async def _retry_returns_the_order(shop: Shop, key: str, order: pb.Order) -> None:
    """The same key again: the same order; a cancelled one buys now, exactly once."""
    reply = None
    for _ in range(100):
        try:
            reply = await shop.orders.CreateOrder(
                shop.create_request(_QUANTITY, key), metadata=metadata_of(shop.buyer)
            )
            break
        except grpc.aio.AioRpcError as error:  # a peer still reconnecting, or busy
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED):
                raise
            await asyncio.sleep(0.1)
    assert reply is not None
    assert reply.order.order_id == order.order_id
    assert reply.order.status == pb.ORDER_STATUS_COMPLETED
    if order.status == pb.ORDER_STATUS_COMPLETED:
        assert reply.order.transaction_id == order.transaction_id
    else:
        assert reply.order.attempt == order.attempt + 1
    await _assert_truthful(shop, reply.order)


async def _buy(shop: Shop, key: str) -> grpc.aio.UnaryUnaryCall[Any, Any]:
    call: Any = shop.orders.CreateOrder(
        shop.create_request(_QUANTITY, key), metadata=metadata_of(shop.buyer)
    )
    return call  # type: ignore[no-any-return]


def _after(
    step: str, action: Callable[[], Awaitable[None]]
) -> Callable[[str, str], Awaitable[None]]:
    async def observe(_order_id: str, done: str) -> None:
        if done == step:
            await action()

    return observe


@pytest.mark.parametrize("step", STEPS)
async def test_a_peer_that_stops_after_a_step(
    platform: Platform, client: httpx.AsyncClient, step: str
) -> None:
    async with open_shop(platform, client) as shop:
        peer = _next_peer(platform, step)
        key = new_id()
        platform.steps.observer = _after(step, peer.stop)
        try:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await await_call(await _buy(shop, key))
        finally:
            platform.steps.observer = None
            if peer.running is None:
                await peer.start()

        order = await _settled(shop, await _order_of(shop, key))

        await _assert_truthful(shop, order)
        await _retry_returns_the_order(shop, key, order)


@pytest.mark.parametrize("step", STEPS)
async def test_a_caller_that_goes_away_after_a_step(
    platform: Platform, client: httpx.AsyncClient, step: str
) -> None:
    async with open_shop(platform, client) as shop:
        key = new_id()
        reached, gone = asyncio.Event(), asyncio.Event()

        async def pause() -> None:
            reached.set()
            await gone.wait()

        platform.steps.observer = _after(step, pause)
        try:
            call = await _buy(shop, key)
            await asyncio.wait_for(reached.wait(), 30)
            call.cancel()  # the client (the BFF) is gone; the purchase is not
            gone.set()
            with pytest.raises(asyncio.CancelledError):
                await call
        finally:
            platform.steps.observer = None
            gone.set()

        order = await _settled(shop, await _order_of(shop, key))

        assert order.status == pb.ORDER_STATUS_COMPLETED
        await _assert_truthful(shop, order)
        await _retry_returns_the_order(shop, key, order)


@pytest.mark.parametrize("step", STEPS)
async def test_the_orders_service_stopping_after_a_step(
    platform: Platform, client: httpx.AsyncClient, step: str
) -> None:
    async with open_shop(platform, client) as shop:
        key = new_id()
        reached = asyncio.Event()

        async def hang() -> None:
            reached.set()
            await asyncio.Event().wait()  # until the service's stop cancels the drive

        platform.steps.observer = _after(step, hang)
        try:
            call = await _buy(shop, key)
            await asyncio.wait_for(reached.wait(), 30)
            await platform.orders.stop()
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
                await call
        finally:
            platform.steps.observer = None
            if platform.orders.running is None:
                await platform.orders.start()

        order = await _settled(shop, await _order_of(shop, key))

        await _assert_truthful(shop, order)
        await _retry_returns_the_order(shop, key, order)


async def await_call(call: Any) -> Any:
    return await call


async def test_replicas_settle_each_order_exactly_once(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """Two orders replicas on one database: their reconcilers race for the same orders,
    the leases make each order settle once (one compensation, one event)."""
    second = Service(
        platform.orders.settings.model_copy(update={"port": 0}),
        functools.partial(create_orders),
        platform.tracer_provider,
    )
    await second.start()
    try:
        async with open_shop(platform, client, price_minor=10, stock=20) as shop:
            keys = [new_id() for _ in range(6)]
            await platform.wallet.stop()
            try:
                for key in keys:
                    with pytest.raises(grpc.aio.AioRpcError) as failed:
                        await shop.orders.CreateOrder(
                            shop.create_request(1, key), metadata=metadata_of(shop.buyer)
                        )
                    # UNAVAILABLE, or ABORTED when the other replica's reconciler took
                    # the order over first on a slow machine: both say "retry".
                    assert failed.value.code() in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.ABORTED,
                    )
            finally:
                await platform.wallet.start()

            orders = [await _settled(shop, await _order_of(shop, key)) for key in keys]
    finally:
        await second.stop()

    for order in orders:
        assert order.status == pb.ORDER_STATUS_CANCELLED
        voids = [
            s for s in order.timeline if (s.name, s.outcome) == ("void", pb.STEP_OUTCOME_SUCCEEDED)
        ]
        assert len(voids) == 1, order
    assert available(await _wallet(client, shop, shop.buyer)) == (_FUNDS, 0)
    assert (await stock_of(client, shop.product["product_id"]))["reserved_quantity"] == 0
    database = Database.connect(platform.orders.settings.resolved_database_url("orders"))
    try:
        rows = await database.lookup(
            select(EVENT_TABLES.outbox.c.aggregate_id).where(
                EVENT_TABLES.outbox.c.event_type == "superapp.orders.v1.OrderCancelled",
                EVENT_TABLES.outbox.c.aggregate_id.in_([o.order_id for o in orders]),
            )
        )
    finally:
        await database.dispose()
    assert sorted(row.aggregate_id for row in rows) == sorted(o.order_id for o in orders)
