"""Products as merchants, shoppers and admins meet them: lifecycle, visibility, ownership."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import update
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import events_pb2
from superapp.type.v1 import money_pb2

from services.catalogue.product_reads import PRODUCTS
from services.database import Database
from services.runtime.ids import new_id
from tests.catalogue.conftest import Shop
from tests.services.rich_errors import failure

USD = "USD"


def _money(amount: int, currency: str = USD) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount)


def _update(product_id: str, paths: list[str], **fields: object) -> pb.UpdateProductRequest:
    return pb.UpdateProductRequest(
        product=pb.Product(product_id=product_id, **fields),  # type: ignore[arg-type]
        update_mask=FieldMask(paths=paths),
        request_id=new_id(),
    )


async def test_a_draft_is_seen_only_by_its_merchant_and_admins(shop: Shop) -> None:
    merchant_id, merchant = await shop.signed_in(merchant=True)
    _, rival = await shop.signed_in(merchant=True)
    category = await shop.category("Kitchen")
    created = await shop.stub.CreateProduct(
        pb.CreateProductRequest(
            product=pb.Product(
                title="  Copper kettle ",
                description="Boils water.",
                price=_money(4999),
                category_id=category.category_id,
                attributes={"colour": "copper", "volume": "1.5 l"},
                image_urls=["https://img.example.com/kettle.jpg"],
                status=pb.PRODUCT_STATUS_PUBLISHED,  # output only: ignored
                merchant_id=new_id(),  # output only: ignored
            ),
            request_id=new_id(),
        ),
        metadata=merchant,
    )
    product = created.product
    assert (product.title, product.merchant_id, product.status) == (
        "Copper kettle",
        merchant_id,
        pb.PRODUCT_STATUS_DRAFT,
    )
    assert dict(product.attributes) == {"colour": "copper", "volume": "1.5 l"}
    assert (product.stock.stocked_quantity, product.stock.available_quantity) == (0, 0)
    assert product.update_time == product.create_time
    assert not product.HasField("publish_time")

    get = pb.GetProductRequest(product_id=product.product_id)
    assert (await shop.stub.GetProduct(get, metadata=merchant)).product == product
    assert (await shop.stub.GetProduct(get, metadata=shop.admin)).product == product
    for stranger in [(), rival]:
        hidden = await failure(shop.stub.GetProduct(get, metadata=stranger))
        assert (hidden.code, hidden.info.reason) == (grpc.StatusCode.NOT_FOUND, "PRODUCT_NOT_FOUND")
        assert dict(hidden.info.metadata) == {"product_id": product.product_id}

    published = (
        await shop.stub.PublishProduct(
            pb.PublishProductRequest(product_id=product.product_id, request_id=new_id()),
            metadata=merchant,
        )
    ).product
    assert published.status == pb.PRODUCT_STATUS_PUBLISHED
    assert published.publish_time == published.update_time
    assert (await shop.stub.GetProduct(get)).product == published
    [payload] = await shop.events("superapp.catalogue.product.published")
    event = events_pb2.ProductPublished.FromString(payload)
    assert (event.product_id, event.product) == (product.product_id, published)

    twice = await failure(
        shop.stub.PublishProduct(
            pb.PublishProductRequest(product_id=product.product_id, request_id=new_id()),
            metadata=merchant,
        )
    )
    assert (twice.code, twice.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_STATUS_TRANSITION",
    )
    assert dict(twice.info.metadata) == {
        "product_id": product.product_id,
        "current_status": "PRODUCT_STATUS_PUBLISHED",
        "target_status": "PRODUCT_STATUS_PUBLISHED",
    }


async def test_merchants_cannot_touch_each_others_products(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, rival = await shop.signed_in(merchant=True)
    _, shopper = await shop.signed_in()
    product = await shop.product(merchant, title="Mine")
    draft = await shop.product(merchant, publish=False, title="Secret")

    calls = {
        "update": lambda who, pid: shop.stub.UpdateProduct(
            _update(pid, ["title"], title="Theirs now"), metadata=who
        ),
        "publish": lambda who, pid: shop.stub.PublishProduct(
            pb.PublishProductRequest(product_id=pid, request_id=new_id()), metadata=who
        ),
        "archive": lambda who, pid: shop.stub.ArchiveProduct(
            pb.ArchiveProductRequest(product_id=pid, request_id=new_id()), metadata=who
        ),
    }
    for name, call in calls.items():
        for stranger in (rival, shopper):
            denied = await failure(call(stranger, product.product_id))
            assert (denied.code, denied.info.reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "PERMISSION_DENIED",
            ), name
            hidden = await failure(call(stranger, draft.product_id))
            assert (hidden.code, hidden.info.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "PRODUCT_NOT_FOUND",
            ), name
    get = pb.GetProductRequest(product_id=product.product_id)
    assert (await shop.stub.GetProduct(get)).product == product

    # A plain user may not sell at all.
    refused = await failure(
        shop.stub.CreateProduct(
            pb.CreateProductRequest(
                product=pb.Product(title="Contraband", price=_money(1)), request_id=new_id()
            ),
            metadata=shopper,
        )
    )
    assert (refused.code, refused.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    # An admin may change any product.
    fixed = await shop.stub.UpdateProduct(
        _update(product.product_id, ["title"], title="Renamed by an admin"), metadata=shop.admin
    )
    assert fixed.product.title == "Renamed by an admin"


async def test_updates_change_only_the_masked_fields_and_report_real_changes(
    shop: Shop,
) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    shelf = await shop.category("Shelves")
    product = await shop.product(
        merchant,
        title="Oak shelf",
        description="Solid oak.",
        category_id=shelf.category_id,
        attributes={"wood": "oak"},
    )
    request = _update(
        product.product_id,
        ["price", "description", "category_id"],
        title="ignored: not in the mask",
        price=_money(2500, "EUR"),
        description="",
        category_id="",
    )
    updated = (await shop.stub.UpdateProduct(request, metadata=merchant)).product
    assert (updated.title, updated.price, updated.description, updated.category_id) == (
        "Oak shelf",
        _money(2500, "EUR"),
        "",
        "",
    )
    assert dict(updated.attributes) == {"wood": "oak"}
    assert updated.update_time.ToDatetime() > product.update_time.ToDatetime()
    # The same request replays the first answer; the same key with other values is refused.
    assert (await shop.stub.UpdateProduct(request, metadata=merchant)).product == updated
    request.product.description = "different"
    reused = await failure(shop.stub.UpdateProduct(request, metadata=merchant))
    assert (reused.code, reused.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "IDEMPOTENCY_KEY_REUSED",
    )
    # Setting what is already there changes nothing and announces nothing.
    same = await shop.stub.UpdateProduct(
        _update(product.product_id, ["title"], title="Oak shelf"), metadata=merchant
    )
    assert same.product == updated
    [payload] = await shop.events("superapp.catalogue.product.updated")
    event = events_pb2.ProductUpdated.FromString(payload)
    assert list(event.changed_paths) == ["description", "price", "category_id"]
    assert event.product == updated

    missing_category = await failure(
        shop.stub.UpdateProduct(
            _update(product.product_id, ["category_id"], category_id=new_id()), metadata=merchant
        )
    )
    assert (missing_category.code, missing_category.info.reason) == (
        grpc.StatusCode.NOT_FOUND,
        "CATEGORY_NOT_FOUND",
    )


_BAD_MASKS = [
    ([], "REQUIRED"),
    (["status"], "OUTPUT_ONLY_FIELD"),
    (["stock"], "OUTPUT_ONLY_FIELD"),
    (["price.amount_minor"], "UNKNOWN_FIELD"),
    (["attributes.colour"], "UNKNOWN_FIELD"),
    (["*"], "UNKNOWN_FIELD"),
    (["colour"], "UNKNOWN_FIELD"),
]


async def test_masks_name_only_fields_a_merchant_sets(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    product = await shop.product(merchant)
    for paths, reason in _BAD_MASKS:
        error = await failure(
            shop.stub.UpdateProduct(
                _update(product.product_id, paths, title="x"), metadata=merchant
            )
        )
        assert (error.code, error.violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            {"update_mask": reason},
        ), paths
    get = pb.GetProductRequest(product_id=product.product_id)
    assert (await shop.stub.GetProduct(get)).product == product


async def test_archiving_is_final_and_announced_once(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, shopper = await shop.signed_in()
    product = await shop.product(merchant, title="Retired lamp", stock=2)
    archive = pb.ArchiveProductRequest(product_id=product.product_id, request_id=new_id())
    archived = (await shop.stub.ArchiveProduct(archive, metadata=merchant)).product
    assert archived.status == pb.PRODUCT_STATUS_ARCHIVED
    assert archived.publish_time == product.publish_time
    assert archived.stock.stocked_quantity == 2
    again = await shop.stub.ArchiveProduct(
        pb.ArchiveProductRequest(product_id=product.product_id, request_id=new_id()),
        metadata=merchant,
    )
    assert again.product == archived
    [payload] = await shop.events("superapp.catalogue.product.archived")
    event = events_pb2.ProductArchived.FromString(payload)
    assert (event.previous_status, event.product) == (pb.PRODUCT_STATUS_PUBLISHED, archived)

    hidden = await failure(
        shop.stub.GetProduct(pb.GetProductRequest(product_id=product.product_id), metadata=shopper)
    )
    assert hidden.info.reason == "PRODUCT_NOT_FOUND"
    frozen = await failure(
        shop.stub.UpdateProduct(
            _update(product.product_id, ["title"], title="x"), metadata=merchant
        )
    )
    assert (frozen.code, frozen.info.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "PRODUCT_ARCHIVED",
    )
    republish = await failure(
        shop.stub.PublishProduct(
            pb.PublishProductRequest(product_id=product.product_id, request_id=new_id()),
            metadata=merchant,
        )
    )
    assert republish.info.metadata["current_status"] == "PRODUCT_STATUS_ARCHIVED"
    listed = await shop.stub.ListProducts(pb.ListProductsRequest())
    assert product.product_id not in [p.product_id for p in listed.products]
    found = await shop.stub.SearchProducts(pb.SearchProductsRequest(query="retired lamp"))
    assert list(found.results) == []


_VALID = {"title": "Good thing", "price": _money(100)}


_BAD_PRODUCTS: list[tuple[dict[str, object], dict[str, str], str]] = [
    ({"title": "   "}, {"product.title": "REQUIRED"}, "INVALID_ARGUMENT"),
    ({"title": "x" * 201}, {"product.title": "TOO_LONG"}, "INVALID_ARGUMENT"),
    ({"description": "x" * 5001}, {"product.description": "TOO_LONG"}, "INVALID_ARGUMENT"),
    ({"price": None}, {"product.price": "REQUIRED"}, "INVALID_ARGUMENT"),
    ({"price": _money(0)}, {"product.price.amount_minor": "OUT_OF_RANGE"}, "INVALID_ARGUMENT"),
    (
        {"price": _money(10**15)},
        {"product.price.amount_minor": "OUT_OF_RANGE"},
        "INVALID_ARGUMENT",
    ),
    (
        {"price": _money(5, "usd")},
        {"product.price.currency_code": "INVALID_CURRENCY"},
        "INVALID_CURRENCY",
    ),
    ({"category_id": "kitchen"}, {"product.category_id": "MALFORMED_ID"}, "INVALID_ARGUMENT"),
    (
        {"attributes": {f"k{i}": "v" for i in range(51)}},
        {"product.attributes": "TOO_MANY"},
        "INVALID_ARGUMENT",
    ),
    ({"attributes": {"k" * 65: "v"}}, {"product.attributes": "KEY"}, "INVALID_ARGUMENT"),
    ({"attributes": {"k": "v" * 257}}, {"product.attributes": "VALUE"}, "INVALID_ARGUMENT"),
    (
        {"image_urls": ["http://img.example.com/a.jpg"]},
        {"product.image_urls[0]": "INVALID_URL"},
        "INVALID_ARGUMENT",
    ),
    (
        {"image_urls": ["https://ok.example.com/a.jpg", "/relative.jpg"]},
        {"product.image_urls[1]": "INVALID_URL"},
        "INVALID_ARGUMENT",
    ),
    (
        {"image_urls": ["https://img.example.com/a.jpg"] * 11},
        {"product.image_urls": "TOO_MANY"},
        "INVALID_ARGUMENT",
    ),
]


async def test_bad_products_are_refused_field_by_field(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    for fields, violations, reason in _BAD_PRODUCTS:
        product = {**_VALID, **fields}
        if product["price"] is None:
            del product["price"]
        request = pb.CreateProductRequest(product=pb.Product(**product), request_id=new_id())  # type: ignore[arg-type]
        error = await failure(shop.stub.CreateProduct(request, metadata=merchant))
        assert (error.code, error.info.reason, error.violations) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            violations,
        ), fields
    listed = await shop.stub.ListProducts(
        pb.ListProductsRequest(statuses=[pb.PRODUCT_STATUS_DRAFT]), metadata=shop.admin
    )
    assert list(listed.products) == []


async def test_create_is_idempotent_per_caller_and_rpc(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    _, other = await shop.signed_in(merchant=True)
    request = pb.CreateProductRequest(product=pb.Product(**_VALID), request_id="order-7")  # type: ignore[arg-type]
    first = await shop.stub.CreateProduct(request, metadata=merchant)
    assert await shop.stub.CreateProduct(request, metadata=merchant) == first
    # Request ids are scoped to the caller and to the RPC.
    theirs = await shop.stub.CreateProduct(request, metadata=other)
    assert theirs.product.product_id != first.product.product_id
    await shop.stub.PublishProduct(
        pb.PublishProductRequest(product_id=first.product.product_id, request_id="order-7"),
        metadata=merchant,
    )
    missing = await failure(
        shop.stub.CreateProduct(
            pb.CreateProductRequest(
                product=pb.Product(title="t", price=_money(1), category_id=new_id()),
                request_id=new_id(),
            ),
            metadata=merchant,
        )
    )
    assert (missing.code, missing.info.reason) == (grpc.StatusCode.NOT_FOUND, "CATEGORY_NOT_FOUND")


async def test_a_change_written_without_the_stored_message_is_what_every_read_shows(
    shop: Shop,
) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    product = await shop.product(
        merchant,
        stock=3,
        title="Desk lamp",
        attributes={"colour": "brass"},
        image_urls=["https://img.example.com/lamp.jpg"],
    )
    get = pb.GetProductRequest(product_id=product.product_id)
    assert (await shop.stub.GetProduct(get)).product == product

    # As a writer that knows nothing of the stored message (an older release, a fix by
    # hand) changes a product: the stale message must not be served.
    database = Database.connect(shop.database_url)
    try:
        async with database.write_connection() as connection:
            await connection.execute(
                update(PRODUCTS)
                .where(PRODUCTS.c.product_id == product.product_id)
                .values(title="Floor lamp", attributes={"colour": "steel"})
            )
    finally:
        await database.dispose()
    listed = await shop.stub.ListProducts(pb.ListProductsRequest(merchant_id=product.merchant_id))
    found = await shop.stub.SearchProducts(pb.SearchProductsRequest(query="floor"))
    assert [listed.product_id for listed in listed.products] == [product.product_id]
    assert [hit.product.product_id for hit in found.results] == [product.product_id]
    for served in (
        (await shop.stub.GetProduct(get)).product,
        *listed.products,
        found.results[0].product,
    ):
        assert (served.title, dict(served.attributes)) == ("Floor lamp", {"colour": "steel"})
        assert served.stock == product.stock
        assert served.image_urls == product.image_urls
