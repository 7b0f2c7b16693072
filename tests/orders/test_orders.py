"""Orders as a resource: bought over gRPC and over HTTP, seen by the buyer and the
merchant only, listed page by page."""

from __future__ import annotations

import grpc
import httpx
import pytest
from superapp.orders.v1 import orders_service_pb2 as pb

from services.runtime.ids import new_id
from tests.bff.conftest import Platform, assert_problem, checkout_body, sign_up
from tests.orders.conftest import metadata_of, open_shop
from tests.services.rich_errors import rich_error


async def test_an_order_bought_over_grpc_is_the_buyers_and_the_merchants_to_see(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        buyer, merchant = metadata_of(shop.buyer), metadata_of(shop.merchant)

        created = await shop.orders.CreateOrder(shop.create_request(2, new_id()), metadata=buyer)

        order = created.order
        assert order.status == pb.ORDER_STATUS_COMPLETED
        assert (order.buyer_id, order.merchant_id) == (shop.buyer.user_id, shop.merchant.user_id)
        assert [(i.product_id, i.title, i.quantity) for i in order.items] == [
            (shop.product["product_id"], "Coffee mug", 2)
        ]
        assert (order.total.currency_code, order.total.amount_minor) == ("EUR", 600)
        assert [(s.name, s.outcome) for s in order.timeline] == [
            (name, pb.STEP_OUTCOME_SUCCEEDED) for name in ("reserve", "hold", "commit", "capture")
        ]
        assert order.transaction_id
        assert order.hold_id
        assert order.reservation_id
        seen = await shop.orders.GetOrder(
            pb.GetOrderRequest(order_id=order.order_id), metadata=buyer
        )
        assert seen.order == order
        by_merchant = await shop.orders.GetOrder(
            pb.GetOrderRequest(order_id=order.order_id), metadata=merchant
        )
        assert by_merchant.order == order
        sales = await shop.orders.ListMerchantOrders(
            pb.ListMerchantOrdersRequest(merchant_id=shop.merchant.user_id), metadata=merchant
        )
        assert [o.order_id for o in sales.orders] == [order.order_id]

        stranger = metadata_of(await sign_up(client, "stranger"))
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await shop.orders.GetOrder(
                pb.GetOrderRequest(order_id=order.order_id), metadata=stranger
            )
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
        assert rich_error(hidden.value).info.reason == "ORDER_NOT_FOUND"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await shop.orders.ListOrders(
                pb.ListOrdersRequest(buyer_id=shop.buyer.user_id), metadata=stranger
            )
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as not_theirs:
            await shop.orders.ListMerchantOrders(
                pb.ListMerchantOrdersRequest(merchant_id=shop.merchant.user_id), metadata=stranger
            )
        assert not_theirs.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_order_bought_over_http_is_listed_with_its_timeline_and_payment(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        bought = await client.post(
            "/v1/checkout", json=checkout_body(shop.product, 1), headers=shop.buyer.writing()
        )
        assert bought.status_code == 201, bought.text
        order = bought.json()

        mine = await client.get("/v1/me/orders", headers=shop.buyer.auth)
        one = await client.get(f"/v1/me/orders/{order['order_id']}", headers=shop.buyer.auth)
        sales = await client.get("/v1/merchant/orders", headers=shop.merchant.auth)
        stranger = await sign_up(client, "stranger")
        hidden = await client.get(f"/v1/me/orders/{order['order_id']}", headers=stranger.auth)
        nobody = await client.get(f"/v1/me/orders/{order['order_id']}")

        assert mine.status_code == 200, mine.text
        assert mine.json() == {"orders": [order], "next_page_token": None}
        assert one.json() == order
        assert order["status"] == "COMPLETED"
        assert [(s["name"], s["outcome"]) for s in order["timeline"]] == [
            ("reserve", "SUCCEEDED"),
            ("hold", "SUCCEEDED"),
            ("commit", "SUCCEEDED"),
            ("capture", "SUCCEEDED"),
        ]
        history = (await client.get("/v1/me/wallet/transactions", headers=shop.buyer.auth)).json()
        assert history["transactions"][0]["transaction_id"] == order["transaction_id"]
        assert history["transactions"][0]["description"].startswith(f"Order {order['order_id']}")
        assert sales.json()["orders"] == [order]
        assert_problem(hidden, 404, "ORDER_NOT_FOUND")
        assert_problem(nobody, 401, "UNAUTHENTICATED")
        assert (await client.get("/v1/merchant/orders", headers=stranger.auth)).json() == {
            "orders": [],
            "next_page_token": None,
        }


async def test_pages_walk_every_order_once_newest_first(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client, price_minor=10, stock=20) as shop:
        made = []
        for _ in range(5):
            reply = await client.post(
                "/v1/checkout", json=checkout_body(shop.product, 1), headers=shop.buyer.writing()
            )
            assert reply.status_code == 201, reply.text
            made.append(reply.json()["order_id"])
        refused = await client.post(  # a CANCELLED order is the buyer's too
            "/v1/checkout", json=checkout_body(shop.product, 100), headers=shop.buyer.writing()
        )
        assert_problem(refused, 400, "OUT_OF_STOCK")
        made.append(refused.json()["metadata"]["order_id"])

        seen: list[str] = []
        token = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"page_size": 2}
            if token:
                params["page_token"] = token
            page = await client.get("/v1/me/orders", params=params, headers=shop.buyer.auth)
            assert page.status_code == 200, page.text
            seen += [o["order_id"] for o in page.json()["orders"]]
            pages += 1
            token = page.json()["next_page_token"]
            if token is None:
                break

        assert seen == list(reversed(made))
        assert pages == 3
        sales = await client.get(
            "/v1/merchant/orders", params={"page_size": 100}, headers=shop.merchant.auth
        )
        assert [o["order_id"] for o in sales.json()["orders"]] == list(reversed(made[:5]))
        other = await client.get(
            "/v1/merchant/orders", params={"page_token": token or "x"}, headers=shop.merchant.auth
        )
        assert_problem(other, 400, "INVALID_PAGE_TOKEN")


async def test_bad_requests_are_refused_with_their_fields(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    async with open_shop(platform, client) as shop:
        buyer = metadata_of(shop.buyer)
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await shop.orders.CreateOrder(
                pb.CreateOrderRequest(product_id="nope", quantity=0), metadata=buyer
            )
        assert rich_error(bad.value).violations == {
            "product_id": "MALFORMED_ID",
            "quantity": "OUT_OF_RANGE",
            "unit_price": "REQUIRED",
            "request_id": "REQUIRED",
        }
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await shop.orders.GetOrder(pb.GetOrderRequest(order_id=new_id()))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as malformed:
            await shop.orders.GetOrder(pb.GetOrderRequest(order_id="x"), metadata=buyer)
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
