"""A merchant's products through the BFF, and what other users may see and touch."""

from __future__ import annotations

import httpx

from tests.bff.conftest import (
    Platform,
    assert_problem,
    merchant_session,
    product_on_sale,
    sign_up,
)

DRAFT = {
    "title": "Hand-thrown bowl",
    "description": "Stoneware.",
    "price": {"currency_code": "EUR", "amount_minor": 3_000},
    "attributes": {"glaze": "celadon"},
    "image_urls": ["https://img.example.com/bowl.jpg"],
}


async def test_create_change_publish_restock_and_list_my_products(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await merchant_session(client, platform, "ann")
    key = ann.writing()
    created = await client.post("/v1/merchant/products", json=DRAFT, headers=key)
    again = await client.post("/v1/merchant/products", json=DRAFT, headers=key)
    assert created.status_code == 201, created.text
    assert again.json()["product_id"] == created.json()["product_id"]  # one product per key
    product = created.json()
    assert (product["status"], product["merchant_id"]) == ("DRAFT", ann.user_id)
    path = f"/v1/merchant/products/{product['product_id']}"

    changed = await client.patch(
        path, json={"title": "Celadon bowl", "category_id": None}, headers=ann.writing()
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Celadon bowl"
    assert changed.json()["price"] == DRAFT["price"]  # fields not sent stay as they were
    assert changed.json()["attributes"] == DRAFT["attributes"]

    restocked = await client.post(
        f"{path}/stock-adjustments",
        json={"delta": 7, "reason": "kiln batch"},
        headers=ann.writing(),
    )
    assert restocked.json() == {
        "stocked_quantity": 7,
        "reserved_quantity": 0,
        "available_quantity": 7,
    }
    hidden = await client.get(f"/v1/products/{product['product_id']}")
    assert_problem(hidden, 404, "PRODUCT_NOT_FOUND")  # a draft is invisible to the public
    mine = await client.get("/v1/merchant/products", headers=ann.auth)
    assert [p["product_id"] for p in mine.json()["products"]] == [product["product_id"]]

    published = await client.post(f"{path}/publish", headers=ann.writing())
    assert published.json()["status"] == "PUBLISHED"
    visible = await client.get(f"/v1/products/{product['product_id']}")
    assert visible.json()["title"] == "Celadon bowl"
    twice = await client.post(f"{path}/publish", headers=ann.writing())
    assert_problem(twice, 400, "INVALID_STATUS_TRANSITION")


async def test_other_users_cannot_touch_a_merchants_products(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    ann = await merchant_session(client, platform, "ann")
    bob = await merchant_session(client, platform, "bob")
    shopper = await sign_up(client, "shopper")
    draft = (await client.post("/v1/merchant/products", json=DRAFT, headers=ann.writing())).json()
    on_sale = await product_on_sale(client, ann, price_minor=500, stock=2)

    not_a_merchant = await client.post(
        "/v1/merchant/products", json=DRAFT, headers=shopper.writing()
    )
    assert_problem(not_a_merchant, 403, "PERMISSION_DENIED")
    # Another merchant's draft does not exist for Bob; a published one is not his to change.
    for product, status, reason in (
        (draft, 404, "PRODUCT_NOT_FOUND"),
        (on_sale, 403, "PERMISSION_DENIED"),
    ):
        path = f"/v1/merchant/products/{product['product_id']}"
        update = await client.patch(path, json={"title": "Mine now"}, headers=bob.writing())
        restock = await client.post(
            f"{path}/stock-adjustments", json={"delta": -1, "reason": "x"}, headers=bob.writing()
        )
        assert_problem(update, status, reason)
        assert_problem(restock, status, reason)
    bobs = await client.get("/v1/merchant/products", headers=bob.auth)
    assert bobs.json()["products"] == []
    stock = (await client.get(f"/v1/products/{on_sale['product_id']}")).json()["stock"]
    assert stock["stocked_quantity"] == 2


async def test_an_empty_change_is_refused(platform: Platform, client: httpx.AsyncClient) -> None:
    ann = await merchant_session(client, platform, "ann")
    draft = (await client.post("/v1/merchant/products", json=DRAFT, headers=ann.writing())).json()
    reply = await client.patch(
        f"/v1/merchant/products/{draft['product_id']}", json={}, headers=ann.writing()
    )
    assert_problem(reply, 400, "INVALID_ARGUMENT")
