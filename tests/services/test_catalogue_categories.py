"""Catalogue's category reads: pagination, counts, and clear errors for bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc

from services.catalogue.models import Category, Product
from services.database import Database
from services.runtime.ids import new_id
from tests.services.conftest import Running
from tests.services.rich_errors import rich_error


async def _seed(database_url: str, tree: dict[str, str | None], published: dict[str, int]) -> None:
    """Insert categories (name → parent name) and published products per category name."""
    database = Database.connect(database_url)
    ids: dict[str, str] = {}
    now = datetime.now(UTC)
    try:
        async with database.write() as session:
            for name, parent in tree.items():
                ids[name] = new_id()
                session.add(
                    Category(
                        category_id=ids[name],
                        name=name,
                        name_key=name.lower(),
                        parent_category_id=ids[parent] if parent else None,
                        create_time=now,
                    )
                )
                await session.flush()
            for name, count in published.items():
                for index in range(count):
                    session.add(
                        Product(
                            product_id=new_id(),
                            merchant_id=new_id(),
                            title=f"{name} {index}",
                            description="",
                            price_currency="USD",
                            price_minor=100,
                            category_id=ids[name],
                            attributes={},
                            image_urls=[],
                            status="PUBLISHED" if index % 2 == 0 else "DRAFT",
                            stocked=0,
                            reserved=0,
                            create_time=now,
                            update_time=now,
                            publish_time=None,
                        )
                    )
    finally:
        await database.dispose()


def _stub(running: Running) -> catalogue_service_pb2_grpc.CatalogueServiceStub:
    return catalogue_service_pb2_grpc.CatalogueServiceStub(running.channel)


async def test_pages_walk_every_category_once_parents_first(
    catalogue: Running, database_url: str
) -> None:
    tree: dict[str, str | None] = {"Root": None}
    tree.update({f"Child {i}": "Root" for i in range(7)})
    await _seed(database_url, tree, {})
    seen: list[pb.Category] = []
    token = ""
    while True:
        reply = await _stub(catalogue).ListCategories(
            pb.ListCategoriesRequest(page_size=3, page_token=token)
        )
        seen.extend(reply.categories)
        token = reply.next_page_token
        if not token:
            break
    assert [c.name for c in seen] == list(tree)
    root = seen[0].category_id
    assert all(c.parent_category_id == root for c in seen[1:])


async def test_counts_published_products_in_subtree(catalogue: Running, database_url: str) -> None:
    await _seed(
        database_url,
        {"Food": None, "Fruit": "Food", "Apples": "Fruit", "Tools": None},
        {"Food": 2, "Fruit": 3, "Apples": 4},  # even indexes are published
    )
    reply = await _stub(catalogue).ListCategories(pb.ListCategoriesRequest())
    counts = {c.name: c.product_count for c in reply.categories}
    assert counts == {"Food": 1 + 2 + 2, "Fruit": 2 + 2, "Apples": 2, "Tools": 0}
    food = next(c for c in reply.categories if c.name == "Food")
    children = await _stub(catalogue).ListCategories(
        pb.ListCategoriesRequest(parent_category_id=food.category_id)
    )
    assert [c.name for c in children.categories] == ["Fruit"]
    one = await _stub(catalogue).GetCategory(pb.GetCategoryRequest(category_id=food.category_id))
    assert one.category.product_count == 5
    assert one.category.create_time.seconds > 0


@pytest.mark.parametrize(
    ("request_", "field", "reason"),
    [
        (pb.ListCategoriesRequest(page_size=-1), "page_size", "OUT_OF_RANGE"),
        (pb.ListCategoriesRequest(parent_category_id="x"), "parent_category_id", "MALFORMED_ID"),
        (pb.ListCategoriesRequest(page_token="%%%"), "page_token", "INVALID_PAGE_TOKEN"),
    ],
)
async def test_bad_list_requests_name_the_field(
    catalogue: Running, request_: pb.ListCategoriesRequest, field: str, reason: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(catalogue).ListCategories(request_)
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.info.domain == "catalogue.superapp"
    assert error.violations == {field: reason}


async def test_page_token_from_other_filters_is_refused(
    catalogue: Running, database_url: str
) -> None:
    await _seed(database_url, {"A": None, "B": None, "C": "A"}, {})
    first = await _stub(catalogue).ListCategories(pb.ListCategoriesRequest(page_size=1))
    assert first.next_page_token
    parent = first.categories[0].category_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(catalogue).ListCategories(
            pb.ListCategoriesRequest(parent_category_id=parent, page_token=first.next_page_token)
        )
    assert rich_error(caught.value).info.reason == "INVALID_PAGE_TOKEN"


async def test_unknown_category_is_not_found_with_its_id(catalogue: Running) -> None:
    missing = new_id()
    for call in (
        _stub(catalogue).GetCategory(pb.GetCategoryRequest(category_id=missing)),
        _stub(catalogue).ListCategories(pb.ListCategoriesRequest(parent_category_id=missing)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        error = rich_error(caught.value)
        assert error.code == grpc.StatusCode.NOT_FOUND
        assert (error.info.reason, dict(error.info.metadata)) == (
            "CATEGORY_NOT_FOUND",
            {"category_id": missing},
        )
