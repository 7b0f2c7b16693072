"""Checkout when an upstream dies mid-saga or the BFF itself goes away between steps.

Whatever breaks, no money or stock stays stuck (the orders service settles what is left),
the client gets a clear problem or the order, and a retry with the same key ends in
exactly one sale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.bff.conftest import (
    Platform,
    Service,
    Session,
    admin_session,
    assert_problem,
    available,
    checkout_body,
    merchant_session,
    product_on_sale,
    serving_bff,
    sign_up,
    stock_of,
    top_up,
    wallet_of,
)
from tests.conftest import http_client


async def _shop(
    platform: Platform, http: httpx.AsyncClient
) -> tuple[Session, Session, dict[str, Any]]:
    merchant = await merchant_session(http, platform)
    await wallet_of(http, merchant)
    product = await product_on_sale(http, merchant, price_minor=300, stock=4)
    buyer = await sign_up(http, "buyer")
    await wallet_of(http, buyer)
    await top_up(http, await admin_session(http), buyer, 1_000)
    return merchant, buyer, product


def _stop_after(step: str, service: Service) -> Callable[[str, str], Awaitable[None]]:
    async def observe(_order_id: str, done: str) -> None:
        if done == step and service.running is not None:
            await service.stop()

    return observe


async def _sold_once(
    http: httpx.AsyncClient,
    buyer: Session,
    merchant: Session,
    product: dict[str, Any],
    quantity: int,
) -> None:
    paid = 300 * quantity
    assert available(await _wallet_when_back(http, buyer)) == (1_000 - paid, 0)
    assert available(await _wallet_when_back(http, merchant)) == (paid, 0)
    assert await stock_of(http, product["product_id"]) == {
        "stocked_quantity": 4 - quantity,
        "reserved_quantity": 0,
        "available_quantity": 4 - quantity,
    }


async def test_wallet_down_before_the_hold_releases_the_stock_at_once(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    await platform.wallet.stop()
    try:
        failed = await client.post("/v1/checkout", json=checkout_body(product, 2), headers=headers)
        problem = assert_problem(failed, 503, "UNAVAILABLE")
        assert problem["metadata"]["checkout_step"] == "hold"
        # The wallet could not confirm that no hold was placed, so the order says so...
        assert problem["metadata"]["checkout_state"] == "PENDING"
        order_id = problem["metadata"]["order_id"]
        # ...but the stock is back on sale at once.
        assert await stock_of(client, product["product_id"]) == {
            "stocked_quantity": 4,
            "reserved_quantity": 0,
            "available_quantity": 4,
        }
    finally:
        await platform.wallet.start()
    # The orders service settles the rest by itself: nothing held, the order CANCELLED.
    cancelled = await _order_when(client, buyer, order_id, "CANCELLED")
    assert available(await _wallet_when_back(client, buyer)) == (1_000, 0)
    assert [(s["name"], s["outcome"]) for s in cancelled["timeline"]] == [
        ("reserve", "SUCCEEDED"),
        ("hold", "INTERRUPTED"),
        ("release", "SUCCEEDED"),
        ("void", "INTERRUPTED"),  # once, however many tries the outage took
        ("void", "SUCCEEDED"),
    ]

    retried = await _retry_until_served(client, checkout_body(product, 2), headers)

    assert retried.status_code == 201, retried.text
    assert retried.json()["order_id"] == order_id  # the same order, its next attempt
    assert retried.json()["attempt"] == 2
    await _sold_once(client, buyer, merchant, product, 2)


async def test_catalogue_down_after_the_hold_is_undone_and_the_retry_buys(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    platform.steps.observer = _stop_after("hold", platform.catalogue)
    try:
        failed = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)
        problem = assert_problem(failed, 503, "UNAVAILABLE")
        assert problem["metadata"]["checkout_step"] == "commit"
        # Whether the sale went through could not be told: nothing was undone blindly.
        assert problem["metadata"]["checkout_state"] == "PENDING"
        assert available(await wallet_of(client, buyer)) == (700, 300)
    finally:
        platform.steps.observer = None
        await platform.catalogue.start()

    retried = await _retry_until_served(client, checkout_body(product, 1), headers)
    replayed = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)

    assert retried.status_code == 201, retried.text
    assert replayed.json() == retried.json()
    await _sold_once(client, buyer, merchant, product, 1)


async def test_wallet_down_after_the_sale_is_collected_by_the_orders_service(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    platform.steps.observer = _stop_after("commit", platform.wallet)
    try:
        sold = await client.post("/v1/checkout", json=checkout_body(product, 3), headers=headers)
        # The units are sold: the order exists and says its payment is pending.
        assert sold.status_code == 201, sold.text
        assert sold.json()["status"] == "PAYMENT_PENDING"
        assert (await stock_of(client, product["product_id"]))["stocked_quantity"] == 1
    finally:
        platform.steps.observer = None
        await platform.wallet.start()

    completed = await _order_when(client, buyer, sold.json()["order_id"], "COMPLETED")
    retried = await client.post("/v1/checkout", json=checkout_body(product, 3), headers=headers)

    assert completed["transaction_id"]
    assert (retried.status_code, retried.json()) == (201, completed)
    await _sold_once(client, buyer, merchant, product, 3)


async def test_a_bff_that_goes_away_mid_checkout_does_not_stop_the_purchase(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    for step in ("reserve", "hold", "commit"):
        merchant, buyer, product = await _shop(platform, client)
        headers = buyer.writing()
        reached, bff_gone = asyncio.Event(), asyncio.Event()

        async def pause(
            _order_id: str,
            done: str,
            at: str = step,
            reached: asyncio.Event = reached,
            bff_gone: asyncio.Event = bff_gone,
        ) -> None:
            if done == at:
                reached.set()
                await bff_gone.wait()

        platform.steps.observer = pause
        try:
            async with (
                serving_bff(platform.bff()) as url,
                http_client(url) as http,
            ):
                request = asyncio.create_task(
                    http.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)
                )
                await asyncio.wait_for(reached.wait(), 30)
            # The BFF stopped with the request in flight: the client lost its answer.
            bff_gone.set()
            await asyncio.gather(request, return_exceptions=True)
        finally:
            platform.steps.observer = None
            bff_gone.set()

        retried = await _retry_until_served(client, checkout_body(product, 1), headers)

        assert retried.status_code == 201, (step, retried.text)
        assert retried.json()["status"] == "COMPLETED"
        await _sold_once(client, buyer, merchant, product, 1)


async def _order_when(
    http: httpx.AsyncClient, session: Session, order_id: str, status: str
) -> dict[str, Any]:
    for _ in range(600):
        reply = await http.get(f"/v1/me/orders/{order_id}", headers=session.auth)
        assert reply.status_code == 200, reply.text
        if reply.json()["status"] == status:
            found: dict[str, Any] = reply.json()
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(reply.text)


async def _retry_until_served(
    http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """Retry while a restarted upstream is still being reconnected to (503) or the
    orders service is still settling the order (409)."""
    for _ in range(100):
        reply = await http.post("/v1/checkout", json=body, headers=headers)
        if reply.status_code not in (503, 409):
            return reply
        await asyncio.sleep(0.1)
    return reply


async def _wallet_when_back(http: httpx.AsyncClient, session: Session) -> Any:
    for _ in range(100):
        reply = await http.get("/v1/me/wallet", headers=session.auth)
        if reply.status_code == 200:
            return reply.json()
        await asyncio.sleep(0.1)
    raise AssertionError(reply.text)
