"""SearchProducts: words and prefixes, title hits first, and user text that is only ever text."""

from __future__ import annotations

import asyncio

import grpc
from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from services.runtime.ids import new_id
from tests.catalogue.conftest import Shop
from tests.services.rich_errors import failure


async def _titles(shop: Shop, query: str, category_id: str = "") -> list[str]:
    reply = await shop.stub.SearchProducts(
        pb.SearchProductsRequest(query=query, category_id=category_id)
    )
    scores = [result.relevance_score for result in reply.results]
    assert all(score >= 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    return [result.product.title for result in reply.results]


async def test_words_and_prefixes_match_and_title_hits_rank_first(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    office = await shop.category("Office")
    lighting = await shop.category("Lighting", office.category_id)
    await shop.product(
        merchant, title="Laptop stand", description="Aluminium", category_id=office.category_id
    )
    await shop.product(
        merchant,
        title="Desk lamp",
        description="Good light for your laptop",
        category_id=lighting.category_id,
    )
    await shop.product(merchant, title="Sleeve", attributes={"fits": "Laptops up to 15 inch"})
    await shop.product(merchant, title="Laptops bag", description="Holds two")
    await shop.product(merchant, title="Lapel pin")
    await shop.product(merchant, title="Laptop prototype", publish=False)
    retired = await shop.product(merchant, title="Old laptop")
    await shop.stub.ArchiveProduct(
        pb.ArchiveProductRequest(product_id=retired.product_id, request_id=new_id()),
        metadata=merchant,
    )

    # Title and whole word, title by prefix only, elsewhere whole word, elsewhere by prefix.
    assert await _titles(shop, "laptop") == ["Laptop stand", "Laptops bag", "Desk lamp", "Sleeve"]
    assert await _titles(shop, "LAPTOP") == await _titles(shop, "laptop")
    by_prefix = await _titles(shop, "lap")
    assert set(by_prefix[:3]) == {"Laptop stand", "Laptops bag", "Lapel pin"}
    assert set(by_prefix[3:]) == {"Desk lamp", "Sleeve"}
    # Every term must match, each in any field.
    assert await _titles(shop, "desk light") == ["Desk lamp"]
    assert await _titles(shop, "laptop alumin") == ["Laptop stand"]
    assert await _titles(shop, "inch sleeve") == ["Sleeve"]
    assert await _titles(shop, "laptop bicycle") == []
    # A category takes in its descendants.
    assert await _titles(shop, "laptop", office.category_id) == ["Laptop stand", "Desk lamp"]
    assert await _titles(shop, "laptop", lighting.category_id) == ["Desk lamp"]


async def test_query_syntax_and_sql_are_searched_as_plain_text(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    await shop.product(
        merchant,
        title='Quote "unquote" OR else',
        description="Drop table products for star * fans",
    )
    await shop.product(merchant, title="Ünïcode mug", attributes={"e-mail": "shop@example.com"})
    expectations = {
        '"': [],
        '"unquote': ['Quote "unquote" OR else'],
        "*": [],
        "OR": ['Quote "unquote" OR else'],
        "'; DROP TABLE products; --": ['Quote "unquote" OR else'],
        "' OR 1=1 --": [],
        "title:quote": [],  # "title" is a word here, not a column filter
        "NEAR(quote else)": [],  # "near" is a word here
        "quote AND else": [],  # "and" is a word here
        "quote -else": ['Quote "unquote" OR else'],
        "star*": ['Quote "unquote" OR else'],
        "(quote) {else} ^fans": ['Quote "unquote" OR else'],
        "%_\\": [],
        "ünï": ["Ünïcode mug"],
        "example.com": ["Ünïcode mug"],
        "shop@example": ["Ünïcode mug"],
    }
    for query, titles in expectations.items():
        assert await _titles(shop, query) == titles, query
    assert len((await shop.stub.ListProducts(pb.ListProductsRequest())).products) == 2


async def test_bad_search_requests_are_refused(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    await shop.product(merchant, title="Widget")
    assert await _titles(shop, "w" * 200) == []
    for request, field in [
        (pb.SearchProductsRequest(query=""), "query"),
        (pb.SearchProductsRequest(query=" \t\n"), "query"),
        (pb.SearchProductsRequest(query="w" * 201), "query"),
        (pb.SearchProductsRequest(query="widget", category_id="gadgets"), "category_id"),
        (pb.SearchProductsRequest(query="widget", page_size=-1), "page_size"),
    ]:
        error = await failure(shop.stub.SearchProducts(request))
        assert (error.code, error.info.reason, list(error.violations)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
            [field],
        ), request
    missing = new_id()
    unknown = await failure(
        shop.stub.SearchProducts(pb.SearchProductsRequest(query="widget", category_id=missing))
    )
    assert (unknown.code, unknown.info.reason) == (grpc.StatusCode.NOT_FOUND, "CATEGORY_NOT_FOUND")


async def test_search_pages_serve_each_hit_once_best_first(shop: Shop) -> None:
    _, merchant = await shop.signed_in(merchant=True)
    for index in range(9):
        await shop.product(merchant, title=f"Widget {index}", description="widget " * (index % 3))
        await shop.product(merchant, title=f"Gadget {index}", description=f"widgets {index}")
    seen: list[pb.ProductSearchResult] = []
    token = ""
    while True:
        reply = await shop.stub.SearchProducts(
            pb.SearchProductsRequest(query="widget", page_size=4, page_token=token)
        )
        seen.extend(reply.results)
        token = reply.next_page_token
        if not token:
            break
    titles = [result.product.title for result in seen]
    assert sorted(titles) == sorted(
        [f"Widget {i}" for i in range(9)] + [f"Gadget {i}" for i in range(9)]
    )
    assert all(title.startswith("Widget") for title in titles[:9])
    scores = [result.relevance_score for result in seen]
    assert scores == sorted(scores, reverse=True)
    first = await shop.stub.SearchProducts(pb.SearchProductsRequest(query="widget", page_size=4))
    other_query = await failure(
        shop.stub.SearchProducts(
            pb.SearchProductsRequest(query="gadget", page_token=first.next_page_token)
        )
    )
    assert other_query.info.reason == "INVALID_PAGE_TOKEN"


async def test_searches_made_at_once_answer_as_they_do_one_at_a_time(shop: Shop) -> None:
    """While other calls are in flight the service scans on worker threads (see
    `CallsInFlight`); the answers must be the ones a lone call gets inline."""
    _, merchant = await shop.signed_in(merchant=True)
    for index in range(6):
        await shop.product(merchant, title=f"Kettle {index}", description="steel " * index)
        await shop.product(merchant, title=f"Teapot {index}", description=f"kettles {index}")
    queries = ["kettle", "teapot", "steel", "kett", "kettles 3"] * 6
    alone = [await _titles(shop, query) for query in queries]
    at_once = await asyncio.gather(*(_titles(shop, query) for query in queries))
    assert at_once == alone
    assert all(alone)
