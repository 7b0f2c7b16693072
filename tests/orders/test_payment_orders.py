"""Payment orders: a mini-app payment the user confirmed, paid by the orders saga.

The miniapps service calls CreatePaymentOrder with its service token (role system) for
the user who confirmed; these tests call it the same way, with a system token from
identity's client-credentials grant. Every test checks what the users would see: their
wallets, their orders (gRPC and the BFF's JSON), and the errors the caller gets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import httpx
import pytest
from superapp.identity.v1 import identity_service_pb2 as identity_pb
from superapp.orders.v1 import orders_service_pb2 as pb
from superapp.type.v1.money_pb2 import Money

from services.runtime.ids import new_id
from services.runtime.metrics import Metrics
from tests.bff.conftest import ORDERS_SECRET, Platform, admin_session, available, wallet_of
from tests.orders.conftest import Shop, metadata_of, open_shop
from tests.services.rich_errors import rich_error

_FUNDS = 1_000
_TERMINAL = (pb.ORDER_STATUS_COMPLETED, pb.ORDER_STATUS_CANCELLED, pb.ORDER_STATUS_REVERSED)
_PAYMENT_STAGES = ("started", "funds_held", "completed", "refused", "compensated", "unpaid")
_CHECKOUT_STAGES = ("started", "stock_reserved", "funds_held", "completed", "compensated")


async def _system(platform: Platform) -> tuple[tuple[str, str]]:
    """Metadata of a role-system caller, as the miniapps service calls with."""
    issued = await platform.identity.stub.IssueServiceToken(
        identity_pb.IssueServiceTokenRequest(client_id="orders", client_secret=ORDERS_SECRET)
    )
    return (("authorization", f"Bearer {issued.access_token}"),)


def _payment(
    shop: Shop,
    *,
    amount_minor: int = 250,
    key: str | None = None,
    description: str = "Two coffees at Bean There",
    buyer_id: str | None = None,
) -> pb.CreatePaymentOrderRequest:
    payment_request_id = key or new_id()
    return pb.CreatePaymentOrderRequest(
        buyer_id=buyer_id or shop.buyer.user_id,
        merchant_id=shop.merchant.user_id,
        amount=Money(currency_code="EUR", amount_minor=amount_minor),
        description=description,
        request_id=payment_request_id,
        mini_app_id="0190e0b4-7c1e-7000-8000-0000000000aa",
        payment_request_id=payment_request_id,
    )


async def _balances(shop: Shop) -> tuple[tuple[int, int], tuple[int, int]]:
    """(available, held) of the buyer and of the merchant."""
    return (
        available(await wallet_of(shop.http, shop.buyer)),
        available(await wallet_of(shop.http, shop.merchant)),
    )


def _counts(platform: Platform) -> dict[str, float]:
    assert platform.orders.running is not None
    metrics: Metrics = platform.orders.running.metrics
    counts = {
        f"payment.{stage}": metrics.value("superapp_payment_orders_total", {"stage": stage})
        for stage in _PAYMENT_STAGES
    }
    for stage in _CHECKOUT_STAGES:
        counts[f"checkout.{stage}"] = metrics.value(
            "superapp_checkout_funnel_total", {"stage": stage}
        )
    return counts


def _since(platform: Platform, before: dict[str, float]) -> dict[str, float]:
    now = _counts(platform)
    return {name: now[name] - before[name] for name in now if now[name] != before[name]}


async def test_a_payment_order_moves_exactly_its_amount_once_and_shows_everywhere(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        before = _counts(platform)
        request = _payment(shop)

        created = await shop.orders.CreatePaymentOrder(request, metadata=system)
        replayed = await shop.orders.CreatePaymentOrder(request, metadata=system)

        order = created.order
        assert order.status == pb.ORDER_STATUS_COMPLETED
        assert (order.buyer_id, order.merchant_id) == (shop.buyer.user_id, shop.merchant.user_id)
        assert order.total == Money(currency_code="EUR", amount_minor=250)
        assert not order.items
        assert order.description == "Two coffees at Bean There"
        assert order.mini_app_id == request.mini_app_id
        assert order.payment_request_id == request.payment_request_id
        assert order.request_id == request.request_id
        assert order.transaction_id
        assert order.hold_id
        assert not order.reservation_id
        assert [(s.name, s.outcome) for s in order.timeline] == [
            ("hold", pb.STEP_OUTCOME_SUCCEEDED),
            ("capture", pb.STEP_OUTCOME_SUCCEEDED),
        ]
        assert replayed.order == order  # no second effect: the balances below say so
        assert await _balances(shop) == ((_FUNDS - 250, 0), (250, 0))
        assert _since(platform, before) == {
            "payment.started": 1,
            "payment.funds_held": 1,
            "payment.completed": 1,
        }

        buyer, merchant = metadata_of(shop.buyer), metadata_of(shop.merchant)
        got = await shop.orders.GetOrder(
            pb.GetOrderRequest(order_id=order.order_id), metadata=buyer
        )
        mine = await shop.orders.ListOrders(
            pb.ListOrdersRequest(buyer_id=shop.buyer.user_id), metadata=buyer
        )
        sales = await shop.orders.ListMerchantOrders(
            pb.ListMerchantOrdersRequest(merchant_id=shop.merchant.user_id), metadata=merchant
        )
        assert got.order == order
        assert list(mine.orders) == [order]
        assert list(sales.orders) == [order]

        reply = await client.get(f"/v1/me/orders/{order.order_id}", headers=shop.buyer.auth)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["items"] == []
        assert body["status"] == "COMPLETED"
        assert body["amount"] == {"currency_code": "EUR", "amount_minor": 250}
        assert body["description"] == "Two coffees at Bean There"
        assert body["mini_app_id"] == request.mini_app_id
        assert body["payment_request_id"] == request.payment_request_id
        listed = await client.get("/v1/merchant/orders", headers=shop.merchant.auth)
        assert listed.status_code == 200, listed.text
        assert [o["description"] for o in listed.json()["orders"]] == [body["description"]]


async def test_one_key_is_each_buyers_own(platform: Platform, client: httpx.AsyncClient) -> None:
    """The same request_id for two buyers is two payments: the key belongs to the buyer,
    not to the one caller acting for both."""
    async with open_shop(platform, client) as first, open_shop(platform, client) as second:
        system = await _system(platform)
        key = new_id()

        one = await first.orders.CreatePaymentOrder(_payment(first, key=key), metadata=system)
        other = await second.orders.CreatePaymentOrder(_payment(second, key=key), metadata=system)

        assert one.order.order_id != other.order.order_id
        assert one.order.status == other.order.status == pb.ORDER_STATUS_COMPLETED
        assert await _balances(first) == ((_FUNDS - 250, 0), (250, 0))
        assert await _balances(second) == ((_FUNDS - 250, 0), (250, 0))


async def test_a_buyer_who_cannot_pay_gets_a_cancelled_order_and_nothing_held(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        before = _counts(platform)
        request = _payment(shop, amount_minor=_FUNDS + 1)

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await shop.orders.CreatePaymentOrder(request, metadata=system)

        error = rich_error(refused.value)
        assert error.code == grpc.StatusCode.FAILED_PRECONDITION
        assert (error.info.reason, error.info.domain) == ("INSUFFICIENT_FUNDS", "wallet.superapp")
        assert error.info.metadata["checkout_state"] == "NOTHING_HELD"
        assert error.info.metadata["checkout_step"] == "hold"
        got = await shop.orders.GetOrder(
            pb.GetOrderRequest(order_id=error.info.metadata["order_id"]),
            metadata=metadata_of(shop.buyer),
        )
        assert got.order.status == pb.ORDER_STATUS_CANCELLED
        assert got.order.failure_reason == "INSUFFICIENT_FUNDS"
        assert not got.order.hold_id
        assert await _balances(shop) == ((_FUNDS, 0), (0, 0))
        assert _since(platform, before) == {"payment.started": 1, "payment.refused": 1}
        # The merchant sold nothing: a cancelled payment is not among its sales.
        sales = await shop.orders.ListMerchantOrders(
            pb.ListMerchantOrdersRequest(merchant_id=shop.merchant.user_id),
            metadata=metadata_of(shop.merchant),
        )
        assert list(sales.orders) == []


@pytest.mark.parametrize("who", ["buyer", "merchant", "admin"])
async def test_a_user_may_not_create_a_payment_order(
    platform: Platform, client: httpx.AsyncClient, who: str
) -> None:
    async with open_shop(platform, client) as shop:
        callers = {"buyer": shop.buyer, "merchant": shop.merchant}
        caller = callers[who] if who in callers else await admin_session(client)

        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await shop.orders.CreatePaymentOrder(_payment(shop), metadata=metadata_of(caller))

        error = rich_error(denied.value)
        assert error.code == grpc.StatusCode.PERMISSION_DENIED
        assert error.info.reason == "PERMISSION_DENIED"
        mine = await shop.orders.ListOrders(
            pb.ListOrdersRequest(buyer_id=shop.buyer.user_id), metadata=metadata_of(shop.buyer)
        )
        assert list(mine.orders) == []
        assert await _balances(shop) == ((_FUNDS, 0), (0, 0))


async def test_a_key_reused_with_other_parameters_is_refused(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        request = _payment(shop)
        first = await shop.orders.CreatePaymentOrder(request, metadata=system)
        other = pb.CreatePaymentOrderRequest()
        other.CopyFrom(request)
        other.amount.amount_minor = 300

        with pytest.raises(grpc.aio.AioRpcError) as reused:
            await shop.orders.CreatePaymentOrder(other, metadata=system)
        # A product checkout by the buyer under the payment's key is another use too.
        with pytest.raises(grpc.aio.AioRpcError) as as_purchase:
            await shop.orders.CreateOrder(
                shop.create_request(1, request.request_id), metadata=metadata_of(shop.buyer)
            )

        for error in (rich_error(reused.value), rich_error(as_purchase.value)):
            assert error.code == grpc.StatusCode.FAILED_PRECONDITION
            assert error.info.reason == "IDEMPOTENCY_KEY_REUSED"
            assert error.info.metadata["order_id"] == first.order.order_id
        assert await _balances(shop) == ((_FUNDS - 250, 0), (250, 0))


async def test_paying_oneself_and_bad_input_are_refused_before_an_order_exists(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        itself = _payment(shop, buyer_id=shop.merchant.user_id)
        malformed = _payment(shop, description="")
        malformed.mini_app_id = "not-a-uuid"

        with pytest.raises(grpc.aio.AioRpcError) as self_paid:
            await shop.orders.CreatePaymentOrder(itself, metadata=system)
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await shop.orders.CreatePaymentOrder(malformed, metadata=system)

        error = rich_error(self_paid.value)
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "SELF_PURCHASE",
        )
        error = rich_error(invalid.value)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.violations == {"description": "REQUIRED", "mini_app_id": "MALFORMED_ID"}
        for user in (shop.buyer, shop.merchant):
            mine = await shop.orders.ListOrders(
                pb.ListOrdersRequest(buyer_id=user.user_id), metadata=metadata_of(user)
            )
            assert list(mine.orders) == []


# Interruptions: the reconciler settles a payment order wherever it stopped.


async def _settled(shop: Shop, order_id: str) -> pb.Order:
    """The order once it is terminal (the reconciler drives it there)."""
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError):  # orders may be restarting
            reply = await shop.orders.GetOrder(
                pb.GetOrderRequest(order_id=order_id), metadata=metadata_of(shop.buyer)
            )
            if reply.order.status in _TERMINAL:
                return reply.order
        await asyncio.sleep(0.1)
    raise AssertionError(f"order {order_id} never settled")


async def _order_of(shop: Shop, key: str) -> str:
    """The id of the buyer's order made with `key`."""
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(grpc.aio.AioRpcError):
            page = await shop.orders.ListOrders(
                pb.ListOrdersRequest(buyer_id=shop.buyer.user_id),
                metadata=metadata_of(shop.buyer),
            )
            for order in page.orders:
                if order.request_id == key:
                    return order.order_id
        await asyncio.sleep(0.1)
    raise AssertionError("no order was made")


def _after(
    step: str, action: Callable[[], Awaitable[None]]
) -> Callable[[str, str], Awaitable[None]]:
    async def observe(_order_id: str, done: str) -> None:
        if done == step:
            await action()

    return observe


async def _pay_until_answered(
    shop: Shop, platform: Platform, request: pb.CreatePaymentOrderRequest
) -> pb.Order:
    """The caller's retry with the same key, until the services answer."""
    deadline = asyncio.get_running_loop().time() + 120
    while True:
        try:
            reply = await shop.orders.CreatePaymentOrder(request, metadata=await _system(platform))
            return reply.order
        except grpc.aio.AioRpcError as error:  # a peer reconnecting, or the order busy
            retry = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
            if error.code() not in retry or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _assert_paid_once(shop: Shop, platform: Platform, request: Any, order: Any) -> None:
    """COMPLETED: the amount moved once; a retry returns the same order, no second effect."""
    assert order.status == pb.ORDER_STATUS_COMPLETED, order
    assert order.transaction_id
    assert await _balances(shop) == ((_FUNDS - 250, 0), (250, 0))
    again = await _pay_until_answered(shop, platform, request)
    assert (again.order_id, again.transaction_id) == (order.order_id, order.transaction_id)
    assert await _balances(shop) == ((_FUNDS - 250, 0), (250, 0))


async def test_the_wallet_stopping_after_the_hold_leaves_a_payment_the_reconciler_captures(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        request = _payment(shop)
        platform.steps.observer = _after("hold", platform.wallet.stop)
        try:
            answered = await shop.orders.CreatePaymentOrder(request, metadata=system)
        finally:
            platform.steps.observer = None
            if platform.wallet.running is None:
                await platform.wallet.start()

        # The funds are held, so the payment is owed: the call answers PAYMENT_PENDING.
        assert answered.order.status == pb.ORDER_STATUS_PAYMENT_PENDING
        order = await _settled(shop, answered.order.order_id)

        await _assert_paid_once(shop, platform, request, order)


async def test_the_orders_service_stopping_after_the_hold_is_settled_on_restart(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        request = _payment(shop)
        reached = asyncio.Event()

        async def hang() -> None:
            reached.set()
            await asyncio.Event().wait()  # until the service's stop cancels the drive

        platform.steps.observer = _after("hold", hang)
        try:
            call = shop.orders.CreatePaymentOrder(request, metadata=system)
            await asyncio.wait_for(reached.wait(), 60)
            await platform.orders.stop()
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
                await call
        finally:
            platform.steps.observer = None
            if platform.orders.running is None:
                await platform.orders.start()

        order = await _settled(shop, await _order_of(shop, request.request_id))

        await _assert_paid_once(shop, platform, request, order)


async def test_a_hold_whose_outcome_is_unknown_is_voided_and_the_key_pays_later(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """The wallet is away at the hold: nobody knows whether it was placed, so the order
    is PENDING with money possibly held; the reconciler voids it (CANCELLED, nothing
    held) and the same key then pays as the order's next attempt."""
    async with open_shop(platform, client) as shop:
        system = await _system(platform)
        request = _payment(shop)
        await platform.wallet.stop()
        try:
            with pytest.raises(grpc.aio.AioRpcError) as unavailable:
                await shop.orders.CreatePaymentOrder(request, metadata=system)
        finally:
            await platform.wallet.start()

        error = rich_error(unavailable.value)
        assert error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
        order = await _settled(shop, await _order_of(shop, request.request_id))
        assert order.status == pb.ORDER_STATUS_CANCELLED, order
        assert ("capture", pb.STEP_OUTCOME_SUCCEEDED) not in [
            (s.name, s.outcome) for s in order.timeline
        ]
        assert await _balances(shop) == ((_FUNDS, 0), (0, 0))

        again = await _pay_until_answered(shop, platform, request)

        assert (again.order_id, again.attempt) == (order.order_id, order.attempt + 1)
        await _assert_paid_once(shop, platform, request, again)
