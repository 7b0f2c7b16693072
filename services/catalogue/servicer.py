"""CatalogueService over gRPC: translates proto ⇄ domain, nothing more (the contract's
rules and `request_checks` have checked each request before a handler runs).

Mutations run through `IdempotentWrites`, scoped to the caller and the RPC (the contract
scopes request ids to both), so a retry replays the first response.
"""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncSession
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc

from services.auth.caller import Caller, current_caller, require_caller
from services.auth.roles import Role
from services.catalogue import request_checks as checks
from services.catalogue.categories import CategoryTree, CategoryView
from services.catalogue.cursors import (
    Cursor,
    NewestCursor,
    PriceCursor,
    RelevanceCursor,
    decode_cursor,
    encode_cursor,
)
from services.catalogue.inventory import Inventory
from services.catalogue.listing import (
    ProductFilter,
    ProductListing,
    ProductOrder,
    check_may_list,
)
from services.catalogue.messages import (
    product_message,
    reservation_message,
    stock_message,
)
from services.catalogue.products import Products
from services.catalogue.records import PUBLISHED
from services.catalogue.search import SearchQuery, search_terms
from services.database.idempotency import IdempotentWrites
from services.runtime.errors import PermissionDenied
from services.runtime.page_tokens import PageTokens
from services.runtime.proto_time import to_timestamp
from services.runtime.validation import page_size

__all__ = ["CatalogueServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


def _category(view: CategoryView) -> pb.Category:
    return pb.Category(
        category_id=view.category_id,
        name=view.name,
        parent_category_id=view.parent_category_id or "",
        product_count=view.product_count,
        create_time=to_timestamp(view.create_time),
    )


def _listing_scope(products: ProductFilter, caller: Caller | None) -> list[object]:
    scope: list[object] = [
        "ListProducts",
        products.category_id,
        products.merchant_id,
        products.currency,
        products.min_price_minor,
        products.max_price_minor,
        list(products.statuses),
        products.order.value,
    ]
    if set(products.statuses) != {PUBLISHED}:
        # Drafts and archived products are listed to their merchant and admins only:
        # such a token continues only its caller's listing.
        scope.append(caller.user_id if caller is not None else None)
    return scope


class CatalogueServicer(catalogue_service_pb2_grpc.CatalogueServiceServicer):
    """The catalogue gRPC service."""

    def __init__(
        self,
        *,
        categories: CategoryTree,
        products: Products,
        listing: ProductListing,
        search: SearchQuery,
        inventory: Inventory,
        writes: IdempotentWrites,
        page_tokens: PageTokens,
    ) -> None:
        self._categories = categories
        self._products = products
        self._listing = listing
        self._search = search
        self._inventory = inventory
        self._writes = writes
        self._page_tokens = page_tokens

    # Products

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        fields = checks.product_fields(request.product)
        caller = require_caller()

        async def create(session: AsyncSession) -> pb.CreateProductResponse:
            product = await self._products.create(session, caller, fields)
            return pb.CreateProductResponse(product=product_message(product))

        return await self._writes.run_for(
            "CreateProduct", caller.user_id, request, pb.CreateProductResponse, create
        )

    async def GetProduct(
        self, request: pb.GetProductRequest, context: Context
    ) -> pb.GetProductResponse:
        response = pb.GetProductResponse()
        await self._products.get(current_caller(), request.product_id, response.product)
        return response

    async def UpdateProduct(
        self, request: pb.UpdateProductRequest, context: Context
    ) -> pb.UpdateProductResponse:
        paths = checks.update_paths(request.update_mask.paths)
        fields = checks.product_fields(request.product)
        caller = require_caller()

        async def update(session: AsyncSession) -> pb.UpdateProductResponse:
            product = await self._products.update(
                session, caller, request.product.product_id, fields, paths
            )
            return pb.UpdateProductResponse(product=product_message(product))

        return await self._writes.run_for(
            "UpdateProduct", caller.user_id, request, pb.UpdateProductResponse, update
        )

    async def PublishProduct(
        self, request: pb.PublishProductRequest, context: Context
    ) -> pb.PublishProductResponse:
        caller = require_caller()

        async def publish(session: AsyncSession) -> pb.PublishProductResponse:
            product = await self._products.publish(session, caller, request.product_id)
            return pb.PublishProductResponse(product=product_message(product))

        return await self._writes.run_for(
            "PublishProduct", caller.user_id, request, pb.PublishProductResponse, publish
        )

    async def ArchiveProduct(
        self, request: pb.ArchiveProductRequest, context: Context
    ) -> pb.ArchiveProductResponse:
        caller = require_caller()

        async def archive(session: AsyncSession) -> pb.ArchiveProductResponse:
            product = await self._products.archive(session, caller, request.product_id)
            return pb.ArchiveProductResponse(product=product_message(product))

        return await self._writes.run_for(
            "ArchiveProduct", caller.user_id, request, pb.ArchiveProductResponse, archive
        )

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        products = checks.product_filter(request)
        size = page_size(request.page_size)
        caller = current_caller()
        # Before the token: a caller who may not list drafts hears that, not that a
        # token of someone else's listing is not theirs.
        check_may_list(caller, products)
        scope = _listing_scope(products, caller)
        tokens = self._page_tokens
        after: Cursor | None
        if products.order is ProductOrder.NEWEST:
            after = decode_cursor(tokens, request.page_token, scope, NewestCursor)
        else:
            after = decode_cursor(tokens, request.page_token, scope, PriceCursor)
        page = await self._listing.page(caller, products, size, after)
        response = pb.ListProductsResponse(
            next_page_token=encode_cursor(tokens, page.next_cursor, scope)
        )
        for product in page.products:
            product.fill(response.products.add())
        return response

    async def SearchProducts(
        self, request: pb.SearchProductsRequest, context: Context
    ) -> pb.SearchProductsResponse:
        size = page_size(request.page_size)
        terms = search_terms(request.query)
        scope = ["SearchProducts", terms, request.category_id]
        tokens = self._page_tokens
        after = decode_cursor(tokens, request.page_token, scope, RelevanceCursor)
        page = await self._search.page(terms, request.category_id or None, size, after)
        response = pb.SearchProductsResponse(
            next_page_token=encode_cursor(tokens, page.next_cursor, scope)
        )
        for hit in page.hits:
            result = response.results.add(relevance_score=hit.score)
            hit.product.fill(result.product)
        return response

    # Categories

    async def CreateCategory(
        self, request: pb.CreateCategoryRequest, context: Context
    ) -> pb.CreateCategoryResponse:
        name = request.category.name.strip()
        parent_id = request.category.parent_category_id
        caller = require_caller()
        if not caller.has_role(Role.ADMIN):  # the policy says so too; the handler never trusts
            raise PermissionDenied("PERMISSION_DENIED", "only an admin may create categories")

        async def create(session: AsyncSession) -> pb.CreateCategoryResponse:
            view = await self._categories.create(session, name, parent_id or None)
            return pb.CreateCategoryResponse(category=_category(view))

        return await self._writes.run_for(
            "CreateCategory", caller.user_id, request, pb.CreateCategoryResponse, create
        )

    async def GetCategory(
        self, request: pb.GetCategoryRequest, context: Context
    ) -> pb.GetCategoryResponse:
        view = await self._categories.get(request.category_id)
        return pb.GetCategoryResponse(category=_category(view))

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        size = page_size(request.page_size)
        scope = ["ListCategories", request.parent_category_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._categories.list(
            request.parent_category_id or None, size, str(after[0]) if after else None
        )
        next_token = ""
        if page.has_more:
            next_token = self._page_tokens.encode([page.categories[-1].category_id], scope)
        return pb.ListCategoriesResponse(
            categories=[_category(view) for view in page.categories], next_page_token=next_token
        )

    # Stock

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: Context
    ) -> pb.ReserveStockResponse:
        ttl = checks.reservation_ttl(request)
        caller = require_caller()

        async def reserve(session: AsyncSession) -> pb.ReserveStockResponse:
            reservation = await self._inventory.reserve(
                session, caller, request.product_id, request.quantity, ttl, for_user=request.user_id
            )
            return pb.ReserveStockResponse(reservation=reservation_message(reservation))

        return await self._writes.run_for(
            "ReserveStock", caller.user_id, request, pb.ReserveStockResponse, reserve
        )

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        caller = require_caller()

        async def commit(session: AsyncSession) -> pb.CommitReservationResponse:
            reservation = await self._inventory.commit(session, caller, request.reservation_id)
            return pb.CommitReservationResponse(reservation=reservation_message(reservation))

        return await self._writes.run_for(
            "CommitReservation", caller.user_id, request, pb.CommitReservationResponse, commit
        )

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Context
    ) -> pb.ReleaseReservationResponse:
        caller = require_caller()

        async def release(session: AsyncSession) -> pb.ReleaseReservationResponse:
            reservation = await self._inventory.release(session, caller, request.reservation_id)
            return pb.ReleaseReservationResponse(reservation=reservation_message(reservation))

        return await self._writes.run_for(
            "ReleaseReservation", caller.user_id, request, pb.ReleaseReservationResponse, release
        )

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: Context
    ) -> pb.GetReservationResponse:
        reservation = await self._inventory.get_reservation(
            require_caller(), request.reservation_id
        )
        return pb.GetReservationResponse(reservation=reservation_message(reservation))

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        caller = require_caller()

        async def adjust(session: AsyncSession) -> pb.AdjustStockResponse:
            stock = await self._inventory.adjust(
                session, caller, request.product_id, request.delta, request.reason
            )
            return pb.AdjustStockResponse(stock=stock_message(stock))

        return await self._writes.run_for(
            "AdjustStock", caller.user_id, request, pb.AdjustStockResponse, adjust
        )
