"""A shopper's first session, as the mobile app drives it over HTTP."""

from __future__ import annotations

import httpx

from services.runtime.ids import new_id
from tests.bff.conftest import (
    Platform,
    admin_session,
    available,
    log_in,
    merchant_session,
    product_on_sale,
    wallet_of,
)
from tests.identity.conftest import PASSWORD


async def test_sign_up_top_up_browse_search_buy_and_see_it_in_the_history(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    merchant = await merchant_session(client, platform, "potter")
    await wallet_of(client, merchant)
    mug = await product_on_sale(
        client, merchant, price_minor=1_250, stock=10, title=f"Glazed teapot {new_id()[-6:]}"
    )

    # Sign up; the wallet is opened by the UserRegistered event shortly after.
    email = f"shopper-{new_id()}@example.com"
    registered = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD, "display_name": "Shopper"},
        headers={"Idempotency-Key": new_id()},
    )
    assert registered.status_code == 201, registered.text
    shopper = await log_in(client, email)
    assert (await wallet_of(client, shopper))["balances"] == []

    # An operator tops the wallet up.
    admin = await admin_session(client)
    top_up = await client.post(
        f"/v1/admin/wallets/{shopper.user_id}/top-ups",
        json={"amount": {"currency_code": "EUR", "amount_minor": 5_000}, "description": "promo"},
        headers=admin.writing(),
    )
    assert top_up.status_code == 201, top_up.text

    # Browse, search, open the product.
    home = (await client.get("/v1/home", headers=shopper.auth)).json()
    assert available(home["wallet"]) == (5_000, 0)
    assert mug["product_id"] in {p["product_id"] for p in home["featured_products"]}
    listed = (await client.get("/v1/products", params={"merchant_id": merchant.user_id})).json()
    assert [p["product_id"] for p in listed["products"]] == [mug["product_id"]]
    found = await client.get("/v1/search/products", params={"query": mug["title"].split()[-1]})
    assert [hit["product"]["product_id"] for hit in found.json()["results"]] == [mug["product_id"]]
    detail = (await client.get(f"/v1/products/{mug['product_id']}")).json()
    assert detail["stock"]["available_quantity"] == 10

    # Buy two; the app retries once as if the first answer was lost.
    order_request = {"product_id": mug["product_id"], "quantity": 2, "unit_price": detail["price"]}
    headers = shopper.writing()
    order = await client.post("/v1/checkout", json=order_request, headers=headers)
    retry = await client.post("/v1/checkout", json=order_request, headers=headers)
    assert order.status_code == 201, order.text
    assert retry.json() == order.json()

    # Money and stock moved exactly once, and the history shows the purchase.
    assert available(await wallet_of(client, shopper)) == (2_500, 0)
    assert available(await wallet_of(client, merchant)) == (2_500, 0)
    after = (await client.get(f"/v1/products/{mug['product_id']}")).json()
    assert after["stock"] == {
        "stocked_quantity": 8,
        "reserved_quantity": 0,
        "available_quantity": 8,
    }
    history = (await client.get("/v1/me/wallet/transactions", headers=shopper.auth)).json()
    assert [(t["kind"], t["amount"]["amount_minor"]) for t in history["transactions"]] == [
        ("HOLD_CAPTURE", -2_500),
        ("CREDIT", 5_000),
    ]
    assert history["transactions"][0]["transaction_id"] == order.json()["transaction_id"]
    assert history["transactions"][0]["counterparty_user_id"] == merchant.user_id
    sales = (await client.get("/v1/me/wallet/transactions", headers=merchant.auth)).json()
    assert [t["amount"]["amount_minor"] for t in sales["transactions"]] == [2_500]
