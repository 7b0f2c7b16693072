"""Checkout when an upstream dies mid-saga or the BFF itself stops between steps.

Whatever breaks, no money or stock stays stuck (or, past the point of no return, a retry
finishes the job), the client gets a clear problem, and a retry with the same key ends
in exactly one sale.
"""

from __future__ import annotations

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


class BffCrashed(Exception):
    """Stands for the BFF process dying between two steps."""


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


def _stop_after(step: str, service: Service) -> Callable[[str], Awaitable[None]]:
    async def observe(done: str) -> None:
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
    assert available(await wallet_of(http, buyer)) == (1_000 - paid, 0)
    assert available(await wallet_of(http, merchant)) == (paid, 0)
    assert await stock_of(http, product["product_id"]) == {
        "stocked_quantity": 4 - quantity,
        "reserved_quantity": 0,
        "available_quantity": 4 - quantity,
    }


async def test_wallet_down_after_the_reservation_releases_the_stock(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    await platform.wallet.stop()
    try:
        failed = await client.post("/v1/checkout", json=checkout_body(product, 2), headers=headers)
        problem = assert_problem(failed, 503, "UNAVAILABLE")
        assert problem["metadata"]["checkout_step"] == "hold"
        # The wallet could not confirm that no hold was placed, so the BFF says so...
        assert problem["metadata"]["checkout_state"] == "PENDING"
        # ...but the stock is back on sale at once.
        assert await stock_of(client, product["product_id"]) == {
            "stocked_quantity": 4,
            "reserved_quantity": 0,
            "available_quantity": 4,
        }
    finally:
        await platform.wallet.start()
    assert available(await _wallet_when_back(client, buyer)) == (1_000, 0)  # nothing held

    retried = await _retry_until_served(client, checkout_body(product, 2), headers)

    assert retried.status_code == 201, retried.text
    await _sold_once(client, buyer, merchant, product, 2)


async def test_catalogue_down_after_the_hold_is_finished_by_the_retry(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    async with (
        serving_bff(
            platform.bff(), checkout_observer=_stop_after("hold", platform.catalogue)
        ) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        failed = await http.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)
    try:
        problem = assert_problem(failed, 503, "UNAVAILABLE")
        assert problem["metadata"]["checkout_step"] == "commit"
        # Whether the sale went through could not be told: nothing was undone blindly.
        assert problem["metadata"]["checkout_state"] == "PENDING"
        assert available(await wallet_of(client, buyer)) == (700, 300)
    finally:
        await platform.catalogue.start()

    retried = await _retry_until_served(client, checkout_body(product, 1), headers)
    replayed = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)

    assert retried.status_code == 201, retried.text
    assert replayed.json() == retried.json()
    await _sold_once(client, buyer, merchant, product, 1)


async def test_wallet_down_after_the_sale_is_captured_by_the_retry(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant, buyer, product = await _shop(platform, client)
    headers = buyer.writing()
    async with (
        serving_bff(
            platform.bff(), checkout_observer=_stop_after("commit", platform.wallet)
        ) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        failed = await http.post("/v1/checkout", json=checkout_body(product, 3), headers=headers)
    try:
        problem = assert_problem(failed, 503, "UNAVAILABLE")
        assert problem["metadata"]["checkout_step"] == "capture"
        assert problem["metadata"]["checkout_state"] == "PENDING"
        # The units are sold; the money is still held for the retry to capture.
        assert (await stock_of(client, product["product_id"]))["stocked_quantity"] == 1
    finally:
        await platform.wallet.start()
    assert available(await _wallet_when_back(client, buyer)) == (100, 900)

    retried = await _retry_until_served(client, checkout_body(product, 3), headers)

    assert retried.status_code == 201, retried.text
    await _sold_once(client, buyer, merchant, product, 3)


async def test_a_bff_that_dies_between_steps_is_resumed_by_the_retry(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    for step in ("reserve", "hold", "commit"):
        merchant, buyer, product = await _shop(platform, client)
        headers = buyer.writing()

        async def crash(done: str, at: str = step) -> None:
            if done == at:
                raise BffCrashed(at)

        async with (
            serving_bff(platform.bff(), checkout_observer=crash) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            crashed = await http.post(
                "/v1/checkout", json=checkout_body(product, 1), headers=headers
            )
        assert_problem(crashed, 500, "INTERNAL")
        assert "BffCrashed" not in crashed.text  # no internals in the answer

        retried = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)

        assert retried.status_code == 201, (step, retried.text)
        await _sold_once(client, buyer, merchant, product, 1)


async def _retry_until_served(
    http: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """Retry while the restarted upstream is still being reconnected to (503)."""
    for _ in range(50):
        reply = await http.post("/v1/checkout", json=body, headers=headers)
        if reply.status_code != 503:
            return reply
        await _pause()
    return reply


async def _wallet_when_back(http: httpx.AsyncClient, session: Session) -> Any:
    for _ in range(50):
        reply = await http.get("/v1/me/wallet", headers=session.auth)
        if reply.status_code == 200:
            return reply.json()
        await _pause()
    raise AssertionError(reply.text)


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.1)
