"""Admins grow the category tree; names are unique among siblings whatever their case."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.runtime.ids import new_id
from tests.catalogue.conftest import Shop
from tests.services.rich_errors import failure


def _create(name: str, parent_id: str = "", request_id: str = "") -> pb.CreateCategoryRequest:
    return pb.CreateCategoryRequest(
        category=pb.Category(name=name, parent_category_id=parent_id),
        request_id=request_id or new_id(),
    )


async def test_admins_build_the_tree_and_counts_follow_published_products(shop: Shop) -> None:
    home = await shop.category("  Home ")
    kitchen = await shop.category("Kitchen", home.category_id)
    assert (home.name, home.parent_category_id, home.product_count) == ("Home", "", 0)
    assert kitchen.parent_category_id == home.category_id
    garden = await shop.category("Garden")
    _, merchant = await shop.signed_in(merchant=True)
    pan = await shop.product(merchant, category_id=kitchen.category_id)
    lamp = await shop.product(merchant, category_id=home.category_id)
    draft = await shop.product(merchant, category_id=kitchen.category_id, publish=False)

    async def counts() -> dict[str, int]:
        reply = await shop.stub.ListCategories(pb.ListCategoriesRequest())
        return {c.name: c.product_count for c in reply.categories}

    assert await counts() == {"Home": 2, "Kitchen": 1, "Garden": 0}
    # Counts follow publishing, moves between categories and archiving.
    await shop.stub.PublishProduct(
        pb.PublishProductRequest(product_id=draft.product_id, request_id=new_id()),
        metadata=merchant,
    )
    await shop.stub.UpdateProduct(
        pb.UpdateProductRequest(
            product=pb.Product(product_id=pan.product_id, category_id=garden.category_id),
            update_mask=FieldMask(paths=["category_id"]),
            request_id=new_id(),
        ),
        metadata=merchant,
    )
    assert await counts() == {"Home": 2, "Kitchen": 1, "Garden": 1}
    await shop.stub.ArchiveProduct(
        pb.ArchiveProductRequest(product_id=lamp.product_id, request_id=new_id()),
        metadata=merchant,
    )
    assert await counts() == {"Home": 1, "Kitchen": 1, "Garden": 1}
    one = await shop.stub.GetCategory(pb.GetCategoryRequest(category_id=home.category_id))
    assert one.category.product_count == 1

    request = _create("Tools")
    first = await shop.stub.CreateCategory(request, metadata=shop.admin)
    assert await shop.stub.CreateCategory(request, metadata=shop.admin) == first


async def test_sibling_names_are_unique_case_insensitively(shop: Shop) -> None:
    home = await shop.category("Home")
    kitchen = await shop.category("Kitchen", home.category_id)
    # The same name elsewhere in the tree is fine.
    await shop.category("Kitchen")
    for name, parent, existing in [
        ("HOME", "", home),
        (" kitchen ", home.category_id, kitchen),
    ]:
        taken = await failure(shop.stub.CreateCategory(_create(name, parent), metadata=shop.admin))
        assert (taken.code, taken.info.reason) == (
            grpc.StatusCode.ALREADY_EXISTS,
            "CATEGORY_NAME_TAKEN",
        )
        assert dict(taken.info.metadata) == {
            "name": name.strip(),
            "parent_category_id": parent,
            "category_id": existing.category_id,
        }


async def test_only_admins_create_categories_and_bad_ones_are_refused(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    denied = await failure(shop.stub.CreateCategory(_create("Tools"), metadata=merchant))
    assert (denied.code, denied.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
    )
    assert (await failure(shop.stub.CreateCategory(_create("Tools")))).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    missing = new_id()
    orphan = await failure(shop.stub.CreateCategory(_create("Tools", missing), metadata=shop.admin))
    assert (orphan.code, orphan.info.reason, dict(orphan.info.metadata)) == (
        grpc.StatusCode.NOT_FOUND,
        "CATEGORY_NOT_FOUND",
        {"category_id": missing},
    )
    for request, field in [
        (_create("   "), "category.name"),
        (_create("x" * 101), "category.name"),
        (_create("Tools", "tools"), "category.parent_category_id"),
        (pb.CreateCategoryRequest(category=pb.Category(name="Tools")), "request_id"),
    ]:
        error = await failure(shop.stub.CreateCategory(request, metadata=shop.admin))
        assert (error.code, list(error.violations)) == (grpc.StatusCode.INVALID_ARGUMENT, [field])
    assert list((await shop.stub.ListCategories(pb.ListCategoriesRequest())).categories) == []


async def test_every_page_of_a_parents_children_counts_their_subtrees(shop: Shop) -> None:
    home = await shop.category("Home")
    kitchen = await shop.category("Kitchen", home.category_id)
    pans = await shop.category("Pans", kitchen.category_id)
    garden = await shop.category("Garden", home.category_id)
    _, merchant = await shop.signed_in(merchant=True)
    for category in (pans, kitchen, garden):
        await shop.product(merchant, category_id=category.category_id)
    counts: dict[str, int] = {}
    token = ""
    while True:
        reply = await shop.stub.ListCategories(
            pb.ListCategoriesRequest(
                parent_category_id=home.category_id, page_size=1, page_token=token
            )
        )
        assert len(reply.categories) == 1
        counts.update({c.name: c.product_count for c in reply.categories})
        token = reply.next_page_token
        if not token:
            break
    assert counts == {"Kitchen": 2, "Garden": 1}
