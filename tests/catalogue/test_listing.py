"""ListProducts: filters, orders, and keyset pages that stay right while products arrive."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import grpc
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.type.v1 import money_pb2

from services.catalogue.models import Product
from services.database import Database
from services.runtime.ids import new_id
from tests.catalogue.conftest import Metadata, Shop
from tests.services.hostile_tokens import with_key
from tests.services.rich_errors import failure

_PRICES = [100, 250, 250, 999, 1000, 4999]


async def _seed(database_url: str, merchant_id: str, count: int) -> set[str]:
    """`count` published products straight into the table; many share a time or a price."""
    chance = random.Random(6)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for index in range(count):
        moment = start + timedelta(seconds=index // 3)  # three products per instant
        rows.append(
            {
                "product_id": new_id(),
                "merchant_id": merchant_id,
                "title": f"Seeded {index}",
                "description": "",
                "price_currency": chance.choice(["USD", "USD", "EUR"]),
                "price_minor": chance.choice(_PRICES),
                "category_id": None,
                "attributes": {},
                "image_urls": [],
                "status": "PUBLISHED",
                "stocked": 0,
                "reserved": 0,
                "create_time": moment,
                "update_time": moment,
                "publish_time": moment,
            }
        )
    database = Database.connect(database_url)
    try:
        async with database.write() as session:
            await session.execute(Product.__table__.insert(), rows)
    finally:
        await database.dispose()
    return {row["product_id"] for row in rows}


def _key(product: pb.Product, order: pb.ProductOrderBy.ValueType) -> tuple[object, ...]:
    """The product's place in `order`, ascending."""
    price = product.price
    if order == pb.PRODUCT_ORDER_BY_NEWEST:
        stamp = product.create_time
        return (-stamp.seconds, -stamp.nanos, _negated(product.product_id))
    if order == pb.PRODUCT_ORDER_BY_PRICE_ASCENDING:
        return (price.currency_code, price.amount_minor, product.product_id)
    return (price.currency_code, -price.amount_minor, _negated(product.product_id))


def _negated(text: str) -> tuple[int, ...]:
    return tuple(-ord(char) for char in text)


async def test_every_page_walk_sees_each_product_once_while_new_ones_arrive(
    shop: Shop,
) -> None:
    merchant_id, merchant = await shop.signed_in(merchant=True)
    seeded = await _seed(shop.database_url, merchant_id, 1000)
    chance = random.Random(7)
    orders = [
        pb.PRODUCT_ORDER_BY_NEWEST,
        pb.PRODUCT_ORDER_BY_PRICE_ASCENDING,
        pb.PRODUCT_ORDER_BY_PRICE_DESCENDING,
    ]
    for order in orders:
        seen: list[pb.Product] = []
        token = ""
        while True:
            reply = await shop.stub.ListProducts(
                pb.ListProductsRequest(order_by=order, page_size=37, page_token=token)
            )
            assert 0 < len(reply.products) <= 37
            seen.extend(reply.products)
            token = reply.next_page_token
            if not token:
                break
            # Someone publishes a product between two pages, at a price anywhere.
            await shop.product(
                merchant,
                title="Late arrival",
                price=money_pb2.Money(
                    currency_code=chance.choice(["USD", "EUR"]),
                    amount_minor=chance.choice(_PRICES),
                ),
            )
        ids = [product.product_id for product in seen]
        assert len(ids) == len(set(ids)), "a product was served twice"
        assert seeded <= set(ids), "a product was skipped"
        keys = [_key(product, order) for product in seen]
        assert keys == sorted(keys)


async def _listed(
    shop: Shop, request: pb.ListProductsRequest, metadata: Metadata = ()
) -> list[str]:
    reply = await shop.stub.ListProducts(request, metadata=metadata)
    return [product.title for product in reply.products]


async def test_filters_combine_and_drafts_are_listed_only_to_their_merchant(
    shop: Shop,
) -> None:
    merchant_id, merchant = await shop.signed_in(merchant=True)
    rival_id, rival = await shop.signed_in(merchant=True)
    home = await shop.category("Home")
    kitchen = await shop.category("Kitchen", home.category_id)
    knives = await shop.category("Knives", kitchen.category_id)
    garden = await shop.category("Garden")

    def usd(amount: int) -> money_pb2.Money:
        return money_pb2.Money(currency_code="USD", amount_minor=amount)

    await shop.product(merchant, title="Lamp", price=usd(3000), category_id=home.category_id)
    await shop.product(merchant, title="Pan", price=usd(2000), category_id=kitchen.category_id)
    await shop.product(merchant, title="Cleaver", price=usd(4000), category_id=knives.category_id)
    await shop.product(rival, title="Spade", price=usd(2500), category_id=garden.category_id)
    await shop.product(
        rival,
        title="Bowl",
        price=money_pb2.Money(currency_code="EUR", amount_minor=100),
        category_id=kitchen.category_id,
    )
    await shop.product(merchant, title="Unfinished", publish=False, category_id=home.category_id)

    newest = await _listed(shop, pb.ListProductsRequest())
    assert newest == ["Bowl", "Spade", "Cleaver", "Pan", "Lamp"]
    in_home = pb.ListProductsRequest(category_id=home.category_id)
    assert await _listed(shop, in_home) == ["Bowl", "Cleaver", "Pan", "Lamp"]
    assert await _listed(shop, pb.ListProductsRequest(merchant_id=rival_id)) == ["Bowl", "Spade"]
    cheap_usd = pb.ListProductsRequest(
        min_price=usd(2000),
        max_price=usd(3000),
        order_by=pb.PRODUCT_ORDER_BY_PRICE_DESCENDING,
    )
    assert await _listed(shop, cheap_usd) == ["Lamp", "Spade", "Pan"]
    by_price = pb.ListProductsRequest(order_by=pb.PRODUCT_ORDER_BY_PRICE_ASCENDING)
    assert await _listed(shop, by_price) == ["Bowl", "Pan", "Spade", "Lamp", "Cleaver"]

    drafts = pb.ListProductsRequest(
        merchant_id=merchant_id, statuses=[pb.PRODUCT_STATUS_DRAFT, pb.PRODUCT_STATUS_DRAFT]
    )
    assert await _listed(shop, drafts, merchant) == ["Unfinished"]
    assert await _listed(shop, drafts, shop.admin) == ["Unfinished"]
    everything = pb.ListProductsRequest(
        merchant_id=merchant_id,
        statuses=[pb.PRODUCT_STATUS_DRAFT, pb.PRODUCT_STATUS_PUBLISHED],
        category_id=home.category_id,
    )
    assert await _listed(shop, everything, merchant) == ["Unfinished", "Cleaver", "Pan", "Lamp"]
    denied = await failure(shop.stub.ListProducts(drafts, metadata=rival))
    assert (denied.code, denied.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    anonymous = await failure(shop.stub.ListProducts(drafts))
    assert (anonymous.code, anonymous.info.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
    )


async def test_bad_list_requests_are_refused_with_their_fields(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    for index in range(3):
        await shop.product(merchant, title=f"Item {index}")

    def usd(amount: int, currency: str = "USD") -> money_pb2.Money:
        return money_pb2.Money(currency_code=currency, amount_minor=amount)

    first = await shop.stub.ListProducts(pb.ListProductsRequest(page_size=1))
    cases = [
        (pb.ListProductsRequest(min_price=usd(10), max_price=usd(5)), "max_price.amount_minor"),
        (
            pb.ListProductsRequest(min_price=usd(1), max_price=usd(5, "EUR")),
            "max_price.currency_code",
        ),
        (pb.ListProductsRequest(min_price=usd(-1)), "min_price.amount_minor"),
        (pb.ListProductsRequest(statuses=[pb.PRODUCT_STATUS_UNSPECIFIED]), "statuses[0]"),
        (pb.ListProductsRequest(statuses=[pb.PRODUCT_STATUS_DRAFT, 42]), "statuses[1]"),  # type: ignore[list-item]
        (pb.ListProductsRequest(order_by=9), "order_by"),  # type: ignore[arg-type]
        (pb.ListProductsRequest(category_id="home"), "category_id"),
        (pb.ListProductsRequest(merchant_id="me"), "merchant_id"),
        (pb.ListProductsRequest(page_size=-1), "page_size"),
    ]
    for request, field in cases:
        error = await failure(shop.stub.ListProducts(request, metadata=merchant))
        assert (error.code, error.info.reason, list(error.violations)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            [field],
        ), request
    bad_currency = await failure(
        shop.stub.ListProducts(pb.ListProductsRequest(max_price=usd(5, "usd")))
    )
    assert (bad_currency.info.reason, bad_currency.violations) == (
        "INVALID_CURRENCY",
        {"max_price.currency_code": "INVALID_CURRENCY"},
    )
    for request in [
        # Issued for other filters, or for another order.
        pb.ListProductsRequest(merchant_id=new_id(), page_token=first.next_page_token),
        pb.ListProductsRequest(
            order_by=pb.PRODUCT_ORDER_BY_PRICE_ASCENDING, page_token=first.next_page_token
        ),
        # Right filters, keys edited by hand (tests/catalogue/test_page_tokens.py has more).
        pb.ListProductsRequest(
            page_token=with_key(first.next_page_token, f'"yesterday","{new_id()}"')
        ),
        pb.ListProductsRequest(page_token=with_key(first.next_page_token, "1,2")),
        pb.ListProductsRequest(page_token="not a token"),
    ]:
        error = await failure(shop.stub.ListProducts(request))
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        ), request
    missing = new_id()
    unknown = await failure(shop.stub.ListProducts(pb.ListProductsRequest(category_id=missing)))
    assert (unknown.code, unknown.info.reason, dict(unknown.info.metadata)) == (
        grpc.StatusCode.NOT_FOUND,
        "CATEGORY_NOT_FOUND",
        {"category_id": missing},
    )
    # page_size is clamped, not refused.
    assert (
        len((await shop.stub.ListProducts(pb.ListProductsRequest(page_size=10_000))).products) == 3
    )
