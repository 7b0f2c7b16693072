"""A sold order whose hold expired before the wallet could capture it: the orders
service collects the payment with a new hold, or, when the buyer can no longer pay,
returns the units to stock and ends REVERSED (a payment order, which has no units, ends
REVERSED having moved nothing). Holds here live 6 s (5 s reservation plus
1 s of grace) by the wallet's clock, which each test moves on past a hold's life while
the wallet is away: an outage outlasts the hold without the test waiting for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from superapp.orders.v1 import orders_service_pb2 as pb

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, Session, available, sign_up, stock_of, wallet_of
from tests.orders.conftest import BACKENDS, Shop, metadata_of, open_shop, orders_platform
from tests.orders.test_payment_orders import _payment, _system
from tests.orders.test_recovery import _settled

_HOLD_LIFE = timedelta(seconds=6)


class SkippingClock:
    """The system's time plus what the test skipped. It keeps running, so everything
    else the wallet times (tokens, its sweeps) goes on as usual; only a skip ages the
    holds at once."""

    def __init__(self) -> None:
        self._skipped = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._skipped

    def skip(self, delta: timedelta) -> None:
        self._skipped += delta


@pytest.fixture(scope="module")
def wallet_clock() -> SkippingClock:
    """The wallet's time, shared by the module's platforms."""
    return SkippingClock()


@pytest.fixture(scope="module", params=BACKENDS)
async def platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    wallet_clock: SkippingClock,
) -> AsyncIterator[Platform]:
    """Orders whose holds expire 6 s (by the wallet's clock) after they are placed."""
    async with orders_platform(
        request,
        tmp_path_factory,
        wallet_clock=wallet_clock,
        reservation_ttl_seconds=5,
        capture_grace_seconds=1,
    ) as it:
        yield it


async def _hold_runs_out_while_orders_is_away(shop: Shop, wallet_clock: SkippingClock) -> None:
    """Orders stops, the wallet comes back, and its clock moves past the hold's life."""
    platform = shop.platform
    await platform.orders.stop()  # nobody collects while the hold runs out
    await platform.wallet.start()
    wallet_clock.skip(_HOLD_LIFE + timedelta(seconds=1))
    await _until(shop.http, shop.buyer, lambda wallet: available(wallet) == (1_000, 0))


async def _sold_while_the_wallet_is_away(shop: Shop, wallet_clock: SkippingClock) -> pb.Order:
    """An order sold with the wallet stopped right after the sale; then orders stops too,
    and the wallet comes back once the order's hold has expired."""
    platform = shop.platform

    async def stop_wallet(_order_id: str, done: str) -> None:
        if done == "commit":
            await platform.wallet.stop()

    platform.steps.observer = stop_wallet
    try:
        sold = await shop.buy(shop.create_request(2, new_id()))
    finally:
        platform.steps.observer = None
    assert sold.order.status == pb.ORDER_STATUS_PAYMENT_PENDING
    await _hold_runs_out_while_orders_is_away(shop, wallet_clock)
    return sold.order


async def _until(http: httpx.AsyncClient, session: Session, ready: Any) -> None:
    for _ in range(400):
        reply = await http.get("/v1/me/wallet", headers=session.auth)
        if reply.status_code == 200 and ready(reply.json()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the hold never expired")


async def test_an_expired_hold_is_replaced_and_captured(
    platform: Platform, client: httpx.AsyncClient, wallet_clock: SkippingClock
) -> None:
    async with open_shop(platform, client) as shop:
        sold = await _sold_while_the_wallet_is_away(shop, wallet_clock)
        await platform.orders.start()

        order = await _settled(shop, sold.order_id)

        assert order.status == pb.ORDER_STATUS_COMPLETED
        assert [(s.name, s.outcome, s.reason) for s in order.timeline][3:] == [
            ("capture", pb.STEP_OUTCOME_INTERRUPTED, "UNAVAILABLE"),
            ("capture", pb.STEP_OUTCOME_FAILED, "HOLD_EXPIRED"),
            ("rehold", pb.STEP_OUTCOME_SUCCEEDED, ""),
            ("capture", pb.STEP_OUTCOME_SUCCEEDED, ""),
        ]
        assert order.hold_id != sold.hold_id
        assert available((await client.get("/v1/me/wallet", headers=shop.buyer.auth)).json()) == (
            400,
            0,
        )
        merchant = (await client.get("/v1/me/wallet", headers=shop.merchant.auth)).json()
        assert available(merchant) == (600, 0)
        assert (await stock_of(client, shop.product["product_id"]))["stocked_quantity"] == 2


async def test_a_payment_that_cannot_be_collected_returns_the_units(
    platform: Platform, client: httpx.AsyncClient, wallet_clock: SkippingClock
) -> None:
    async with open_shop(platform, client) as shop:
        sold = await _sold_while_the_wallet_is_away(shop, wallet_clock)
        friend = await sign_up(client, "friend")
        await wallet_of(client, friend)
        spent = await client.post(
            "/v1/me/wallet/transfers",
            json={
                "to_user_id": friend.user_id,
                "amount": {"currency_code": "EUR", "amount_minor": 1_000},
            },
            headers=shop.buyer.writing(),
        )
        assert spent.status_code == 201, spent.text
        await platform.orders.start()

        order = await _settled(shop, sold.order_id)

        assert order.status == pb.ORDER_STATUS_REVERSED
        assert order.failure_reason == "INSUFFICIENT_FUNDS"
        assert platform.orders.running is not None  # the orders process that settled it
        metrics = platform.orders.running.metrics
        assert metrics.value("superapp_checkout_funnel_total", {"stage": "unpaid"}) == 1
        for refusal in ("HOLD_EXPIRED", "INSUFFICIENT_FUNDS"):
            labels = {"merchant": shop.merchant.user_id, "reason": refusal}
            assert metrics.value("superapp_payment_failures_total", labels) == 1
        assert [(s.name, s.outcome) for s in order.timeline][-3:] == [
            ("capture", pb.STEP_OUTCOME_FAILED),
            ("rehold", pb.STEP_OUTCOME_FAILED),
            ("restock", pb.STEP_OUTCOME_SUCCEEDED),
        ]
        assert not order.transaction_id
        merchant = (await client.get("/v1/me/wallet", headers=shop.merchant.auth)).json()
        assert available(merchant) == (0, 0)
        assert await stock_of(client, shop.product["product_id"]) == {
            "stocked_quantity": 4,
            "reserved_quantity": 0,
            "available_quantity": 4,
        }
        again = await shop.orders.CreateOrder(
            shop.create_request(2, order.request_id), metadata=metadata_of(shop.buyer)
        )
        assert again.order == order  # the same order, and nothing happens twice
        assert metrics.value("superapp_checkout_funnel_total", {"stage": "unpaid"}) == 1
        sales = await client.get("/v1/merchant/orders", headers=shop.merchant.auth)
        assert [(o["order_id"], o["status"]) for o in sales.json()["orders"]] == [
            (order.order_id, "REVERSED")
        ]


async def _paid_while_the_wallet_is_away(
    shop: Shop, wallet_clock: SkippingClock
) -> tuple[pb.CreatePaymentOrderRequest, pb.Order]:
    """A payment order whose funds were held with the wallet stopped right after; then
    orders stops too, and the wallet comes back once the hold has expired."""
    platform = shop.platform

    async def stop_wallet(_order_id: str, done: str) -> None:
        if done == "hold":
            await platform.wallet.stop()

    request = _payment(shop)
    platform.steps.observer = stop_wallet
    try:
        held = await shop.orders.CreatePaymentOrder(request, metadata=await _system(platform))
    finally:
        platform.steps.observer = None
    assert held.order.status == pb.ORDER_STATUS_PAYMENT_PENDING
    await _hold_runs_out_while_orders_is_away(shop, wallet_clock)
    return request, held.order


async def test_an_expired_payment_hold_is_replaced_and_captured(
    platform: Platform, client: httpx.AsyncClient, wallet_clock: SkippingClock
) -> None:
    async with open_shop(platform, client) as shop:
        _request, held = await _paid_while_the_wallet_is_away(shop, wallet_clock)
        await platform.orders.start()

        order = await _settled(shop, held.order_id)

        assert order.status == pb.ORDER_STATUS_COMPLETED
        assert [(s.name, s.outcome, s.reason) for s in order.timeline][1:] == [
            ("capture", pb.STEP_OUTCOME_INTERRUPTED, "UNAVAILABLE"),
            ("capture", pb.STEP_OUTCOME_FAILED, "HOLD_EXPIRED"),
            ("rehold", pb.STEP_OUTCOME_SUCCEEDED, ""),
            ("capture", pb.STEP_OUTCOME_SUCCEEDED, ""),
        ]
        assert available(await wallet_of(client, shop.buyer)) == (750, 0)
        assert available(await wallet_of(client, shop.merchant)) == (250, 0)


async def test_a_payment_order_that_cannot_be_collected_is_reversed_and_moves_nothing(
    platform: Platform, client: httpx.AsyncClient, wallet_clock: SkippingClock
) -> None:
    async with open_shop(platform, client) as shop:
        request, held = await _paid_while_the_wallet_is_away(shop, wallet_clock)
        friend = await sign_up(client, "friend")
        await wallet_of(client, friend)
        spent = await client.post(
            "/v1/me/wallet/transfers",
            json={
                "to_user_id": friend.user_id,
                "amount": {"currency_code": "EUR", "amount_minor": 1_000},
            },
            headers=shop.buyer.writing(),
        )
        assert spent.status_code == 201, spent.text
        await platform.orders.start()

        order = await _settled(shop, held.order_id)

        assert order.status == pb.ORDER_STATUS_REVERSED
        assert order.failure_reason == "INSUFFICIENT_FUNDS"
        # No units to return: the refused new hold ends it.
        assert [(s.name, s.outcome) for s in order.timeline][-2:] == [
            ("capture", pb.STEP_OUTCOME_FAILED),
            ("rehold", pb.STEP_OUTCOME_FAILED),
        ]
        assert not order.transaction_id
        assert available(await wallet_of(client, shop.merchant)) == (0, 0)
        assert platform.orders.running is not None
        metrics = platform.orders.running.metrics
        assert metrics.value("superapp_payment_orders_total", {"stage": "unpaid"}) == 1
        again = await shop.orders.CreatePaymentOrder(request, metadata=await _system(platform))
        assert again.order == order  # the same order, and nothing happens twice
        assert available(await wallet_of(client, shop.merchant)) == (0, 0)
