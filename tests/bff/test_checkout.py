"""Checkout through the BFF: one effect per key, compensation on every refusal."""

from __future__ import annotations

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    Session,
    admin_session,
    assert_problem,
    available,
    checkout_body,
    merchant_session,
    product_on_sale,
    sign_up,
    stock_of,
    top_up,
    wallet_of,
)


async def _buyer(http: httpx.AsyncClient, funds: int) -> Session:
    buyer = await sign_up(http, "buyer")
    await wallet_of(http, buyer)
    if funds:
        await top_up(http, await admin_session(http), buyer, funds)
    return buyer


async def test_checkout_sells_once_and_a_retry_returns_the_same_order(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    await wallet_of(client, merchant)
    product = await product_on_sale(client, merchant, price_minor=250, stock=5)
    buyer = await _buyer(client, 1_000)
    headers = buyer.writing()

    first = await client.post("/v1/checkout", json=checkout_body(product, 2), headers=headers)
    again = await client.post("/v1/checkout", json=checkout_body(product, 2), headers=headers)

    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "COMPLETED"
    assert order["amount"] == {"currency_code": "EUR", "amount_minor": 500}
    assert order["merchant_id"] == merchant.user_id
    assert (again.status_code, again.json()) == (201, order)
    assert available(await wallet_of(client, buyer)) == (500, 0)
    assert available(await wallet_of(client, merchant)) == (500, 0)
    assert await stock_of(client, product["product_id"]) == {
        "stocked_quantity": 3,
        "reserved_quantity": 0,
        "available_quantity": 3,
    }
    history = (await client.get("/v1/me/wallet/transactions", headers=buyer.auth)).json()
    purchase = history["transactions"][0]
    assert purchase["transaction_id"] == order["transaction_id"]
    assert purchase["kind"] == "HOLD_CAPTURE"
    assert purchase["amount"] == {"currency_code": "EUR", "amount_minor": -500}
    assert purchase["counterparty_user_id"] == merchant.user_id
    assert [t["kind"] for t in history["transactions"]] == ["HOLD_CAPTURE", "CREDIT"]


async def test_insufficient_funds_holds_nothing_and_the_same_key_works_after_a_top_up(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    await wallet_of(client, merchant)
    product = await product_on_sale(client, merchant, price_minor=400, stock=4)
    buyer = await _buyer(client, 100)
    headers = buyer.writing()

    refused = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)

    problem = assert_problem(refused, 400, "INSUFFICIENT_FUNDS")
    assert problem["domain"] == "wallet.superapp"
    assert problem["metadata"]["checkout_step"] == "hold"
    assert problem["metadata"]["checkout_state"] == "NOTHING_HELD"
    assert available(await wallet_of(client, buyer)) == (100, 0)
    assert (await stock_of(client, product["product_id"]))["available_quantity"] == 4
    assert (await stock_of(client, product["product_id"]))["reserved_quantity"] == 0

    await top_up(client, await admin_session(client), buyer, 300)
    bought = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)
    replay = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)

    assert bought.status_code == 201, bought.text
    assert replay.json() == bought.json()
    assert available(await wallet_of(client, buyer)) == (0, 0)
    assert available(await wallet_of(client, merchant)) == (400, 0)
    assert await stock_of(client, product["product_id"]) == {
        "stocked_quantity": 3,
        "reserved_quantity": 0,
        "available_quantity": 3,
    }


async def test_out_of_stock_holds_nothing(platform: Platform, client: httpx.AsyncClient) -> None:
    merchant = await merchant_session(client, platform)
    product = await product_on_sale(client, merchant, price_minor=100, stock=1)
    buyer = await _buyer(client, 1_000)

    reply = await client.post(
        "/v1/checkout", json=checkout_body(product, 2), headers=buyer.writing()
    )

    problem = assert_problem(reply, 400, "OUT_OF_STOCK")
    assert problem["metadata"]["checkout_step"] == "reserve"
    assert problem["metadata"]["checkout_state"] == "NOTHING_HELD"
    assert problem["metadata"]["available_quantity"] == "1"
    assert available(await wallet_of(client, buyer)) == (1_000, 0)


async def test_a_changed_price_is_refused_and_releases_the_stock(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    product = await product_on_sale(client, merchant, price_minor=100, stock=3)
    buyer = await _buyer(client, 1_000)
    changed = await client.patch(
        f"/v1/merchant/products/{product['product_id']}",
        json={"price": {"currency_code": "EUR", "amount_minor": 120}},
        headers=merchant.writing(),
    )
    assert changed.status_code == 200, changed.text

    reply = await client.post(
        "/v1/checkout", json=checkout_body(product, 1), headers=buyer.writing()
    )

    problem = assert_problem(reply, 400, "PRICE_CHANGED")
    assert problem["metadata"]["price_minor"] == "120"
    assert available(await wallet_of(client, buyer)) == (1_000, 0)
    assert await stock_of(client, product["product_id"]) == {
        "stocked_quantity": 3,
        "reserved_quantity": 0,
        "available_quantity": 3,
    }


async def test_merchants_cannot_buy_their_own_products(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    product = await product_on_sale(client, merchant, price_minor=100, stock=3)

    reply = await client.post(
        "/v1/checkout", json=checkout_body(product, 1), headers=merchant.writing()
    )

    assert_problem(reply, 400, "SELF_PURCHASE")
    assert (await stock_of(client, product["product_id"]))["available_quantity"] == 3


async def test_a_key_reused_for_another_checkout_is_refused_without_effect(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform)
    product = await product_on_sale(client, merchant, price_minor=100, stock=5)
    buyer = await _buyer(client, 1_000)
    headers = buyer.writing()
    first = await client.post("/v1/checkout", json=checkout_body(product, 1), headers=headers)
    assert first.status_code == 201, first.text

    other = await client.post("/v1/checkout", json=checkout_body(product, 2), headers=headers)

    problem = assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # The key's own order, and nothing internal (no upstream request ids).
    assert problem["metadata"] == {"order_id": first.json()["order_id"]}
    assert available(await wallet_of(client, buyer)) == (900, 0)
    assert (await stock_of(client, product["product_id"]))["available_quantity"] == 4


async def test_unknown_product_and_bad_input(client: httpx.AsyncClient) -> None:
    buyer = await _buyer(client, 0)
    missing = await client.post(
        "/v1/checkout",
        json={
            "product_id": new_id(),
            "quantity": 1,
            "unit_price": {"currency_code": "EUR", "amount_minor": 1},
        },
        headers=buyer.writing(),
    )
    problem = assert_problem(missing, 404, "PRODUCT_NOT_FOUND")
    assert problem["metadata"]["checkout_step"] == "product"
    assert problem["metadata"]["checkout_state"] == "NOTHING_HELD"
    bad = await client.post(
        "/v1/checkout",
        json={"product_id": "x", "quantity": 0, "unit_price": {"currency_code": "eur"}},
        headers=buyer.writing(),
    )
    problem = assert_problem(bad, 400, "INVALID_ARGUMENT")
    assert {v["field"] for v in problem["violations"]} == {
        "product_id",
        "quantity",
        "unit_price.currency_code",
        "unit_price.amount_minor",
    }
    anonymous = await client.post(
        "/v1/checkout",
        json={
            "product_id": new_id(),
            "quantity": 1,
            "unit_price": {"currency_code": "EUR", "amount_minor": 1},
        },
        headers={"Idempotency-Key": new_id()},
    )
    assert_problem(anonymous, 401, "UNAUTHENTICATED")
