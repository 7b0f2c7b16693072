"""Browsing the catalogue: products, search, categories. Public; a token, when sent,
must be valid and lets merchants see their own unpublished products."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.type.v1 import money_pb2

from bff import conversions, schemas
from bff.authentication import MaybeSignedIn, Principal
from bff.dependencies import PageSize, PageToken, UpstreamsDep, next_token
from bff.openapi import errors
from bff.schemas import CurrencyCode, Uuid
from services.runtime.contract_rules import ContractRules
from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.validation import RequestCheck

__all__ = ["router"]

router = APIRouter(tags=["catalogue"])

_MONEY_LIMIT = 10**15


class ProductOrder(StrEnum):
    """How product lists are sorted."""

    NEWEST = "newest"
    PRICE_ASCENDING = "price_ascending"
    PRICE_DESCENDING = "price_descending"


_ORDER = {
    ProductOrder.NEWEST: pb.PRODUCT_ORDER_BY_NEWEST,
    ProductOrder.PRICE_ASCENDING: pb.PRODUCT_ORDER_BY_PRICE_ASCENDING,
    ProductOrder.PRICE_DESCENDING: pb.PRODUCT_ORDER_BY_PRICE_DESCENDING,
}


def _metadata(principal: Principal | None) -> tuple[tuple[str, str], ...]:
    return principal.metadata if principal is not None else ()


def _price_bound(currency_code: str | None, amount_minor: int | None) -> money_pb2.Money | None:
    if amount_minor is None:
        return None
    return money_pb2.Money(currency_code=currency_code or "", amount_minor=amount_minor)


@router.get(
    "/v1/products",
    response_model=schemas.ProductPage,
    responses=errors(401, 404),
    summary="Browse products",
)
async def list_products(
    principal: MaybeSignedIn,
    upstreams: UpstreamsDep,
    category_id: Annotated[
        Uuid | None, Query(description="This category and its descendants.")
    ] = None,
    merchant_id: Annotated[Uuid | None, Query(description="Only this merchant's.")] = None,
    currency_code: Annotated[
        CurrencyCode | None, Query(description="Currency of the price bounds; required with them.")
    ] = None,
    min_price_minor: Annotated[int | None, Query(ge=0, lt=_MONEY_LIMIT)] = None,
    max_price_minor: Annotated[int | None, Query(ge=0, lt=_MONEY_LIMIT)] = None,
    order_by: ProductOrder = ProductOrder.NEWEST,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.ProductPage:
    """Published products matching every filter given."""
    if (min_price_minor is not None or max_price_minor is not None) and currency_code is None:
        raise InvalidArgument(
            [FieldViolation("currency_code", "is required with a price bound", "REQUIRED")]
        )
    if currency_code is not None and min_price_minor is None and max_price_minor is None:
        # Not sent upstream without a bound, so checked here: never silently ignored.
        # By the contract's rule for a Money's currency, as the service would say it.
        RequestCheck(
            ContractRules().violations(money_pb2.Money(currency_code=currency_code))
        ).done()
    reply = await upstreams.catalogue.ListProducts(
        pb.ListProductsRequest(
            category_id=category_id or "",
            merchant_id=merchant_id or "",
            min_price=_price_bound(currency_code, min_price_minor),
            max_price=_price_bound(currency_code, max_price_minor),
            order_by=_ORDER[order_by],
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=_metadata(principal),
    )
    return schemas.ProductPage(
        products=[conversions.product(p) for p in reply.products],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/v1/products/{product_id}",
    response_model=schemas.Product,
    responses=errors(401, 404),
    summary="One product",
)
async def get_product(
    product_id: Annotated[Uuid, Path()], principal: MaybeSignedIn, upstreams: UpstreamsDep
) -> schemas.Product:
    """A product with its stock."""
    reply = await upstreams.catalogue.GetProduct(
        pb.GetProductRequest(product_id=product_id), metadata=_metadata(principal)
    )
    return conversions.product(reply.product)


@router.get(
    "/v1/search/products",
    response_model=schemas.SearchPage,
    responses=errors(401, 404),
    summary="Search products",
)
async def search_products(
    principal: MaybeSignedIn,
    upstreams: UpstreamsDep,
    query: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="Plain text; never query syntax. Not only whitespace.",
            json_schema_extra={"pattern": r"\S"},  # catalogue's rule (REQUIRED)
        ),
    ],
    category_id: Annotated[Uuid | None, Query()] = None,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.SearchPage:
    """Published products whose title, description or attributes contain every word
    (or a word starting with it), best match first."""
    reply = await upstreams.catalogue.SearchProducts(
        pb.SearchProductsRequest(
            query=query,
            category_id=category_id or "",
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=_metadata(principal),
    )
    return schemas.SearchPage(
        results=[
            schemas.SearchHit(
                product=conversions.product(hit.product), relevance_score=hit.relevance_score
            )
            for hit in reply.results
        ],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/v1/categories",
    response_model=schemas.CategoryPage,
    responses=errors(401, 404),
    summary="Browse categories",
)
async def list_categories(
    principal: MaybeSignedIn,
    upstreams: UpstreamsDep,
    parent_category_id: Annotated[
        Uuid | None, Query(description="Only the direct children of this category.")
    ] = None,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.CategoryPage:
    """The category tree in creation order (parents before children)."""
    reply = await upstreams.catalogue.ListCategories(
        pb.ListCategoriesRequest(
            parent_category_id=parent_category_id or "",
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=_metadata(principal),
    )
    return schemas.CategoryPage(
        categories=[conversions.category(c) for c in reply.categories],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/v1/categories/{category_id}",
    response_model=schemas.Category,
    responses=errors(401, 404),
    summary="One category",
)
async def get_category(
    category_id: Annotated[Uuid, Path()], principal: MaybeSignedIn, upstreams: UpstreamsDep
) -> schemas.Category:
    """A category with its count of published products."""
    reply = await upstreams.catalogue.GetCategory(
        pb.GetCategoryRequest(category_id=category_id), metadata=_metadata(principal)
    )
    return conversions.category(reply.category)
