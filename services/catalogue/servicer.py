"""CatalogueService over gRPC: translates proto ⇄ domain, nothing more.

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
from services.runtime.validation import RequestCheck

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
        check = RequestCheck()
        if not request.HasField("product"):
            check.fail("product", "is required", "REQUIRED")
        fields = checks.product_fields(check, request.product)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("product_id", request.product_id)
        check.done()
        response = pb.GetProductResponse()
        await self._products.get(current_caller(), request.product_id, response.product)
        return response

    async def UpdateProduct(
        self, request: pb.UpdateProductRequest, context: Context
    ) -> pb.UpdateProductResponse:
        check = RequestCheck()
        if not request.HasField("product"):
            check.fail("product", "is required", "REQUIRED")
        check.uuid("product.product_id", request.product.product_id)
        paths = checks.update_paths(check, request.update_mask.paths)
        fields = checks.product_fields(check, request.product, paths)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("product_id", request.product_id)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("product_id", request.product_id)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        products = checks.product_filter(check, request)
        page_size = check.page_size(request.page_size)
        check.done()
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
        page = await self._listing.page(caller, products, page_size, after)
        response = pb.ListProductsResponse(
            next_page_token=encode_cursor(tokens, page.next_cursor, scope)
        )
        for product in page.products:
            product.fill(response.products.add())
        return response

    async def SearchProducts(
        self, request: pb.SearchProductsRequest, context: Context
    ) -> pb.SearchProductsResponse:
        check = RequestCheck()
        checks.search_query(check, request.query)
        check.uuid("category_id", request.category_id, required=False)
        page_size = check.page_size(request.page_size)
        check.done()
        terms = search_terms(request.query)
        scope = ["SearchProducts", terms, request.category_id]
        tokens = self._page_tokens
        after = decode_cursor(tokens, request.page_token, scope, RelevanceCursor)
        page = await self._search.page(terms, request.category_id or None, page_size, after)
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
        check = RequestCheck()
        if not request.HasField("category"):
            check.fail("category", "is required", "REQUIRED")
        name = checks.category_name(check, request.category.name)
        parent_id = request.category.parent_category_id
        check.uuid("category.parent_category_id", parent_id, required=False)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("category_id", request.category_id)
        check.done()
        view = await self._categories.get(request.category_id)
        return pb.GetCategoryResponse(category=_category(view))

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        check = RequestCheck()
        check.uuid("parent_category_id", request.parent_category_id, required=False)
        page_size = check.page_size(request.page_size)
        check.done()
        scope = ["ListCategories", request.parent_category_id]
        after = self._page_tokens.decode(request.page_token, scope, (str,))
        page = await self._categories.list(
            request.parent_category_id or None, page_size, str(after[0]) if after else None
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
        check = RequestCheck()
        check.uuid("product_id", request.product_id)
        quantity = checks.quantity(check, request.quantity)
        ttl = checks.reservation_ttl(check, request)
        check.uuid("user_id", request.user_id, required=False)
        check.request_id(request.request_id)
        check.done()
        caller = require_caller()

        async def reserve(session: AsyncSession) -> pb.ReserveStockResponse:
            reservation = await self._inventory.reserve(
                session, caller, request.product_id, quantity, ttl, for_user=request.user_id
            )
            return pb.ReserveStockResponse(reservation=reservation_message(reservation))

        return await self._writes.run_for(
            "ReserveStock", caller.user_id, request, pb.ReserveStockResponse, reserve
        )

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        check = RequestCheck()
        check.uuid("reservation_id", request.reservation_id)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("reservation_id", request.reservation_id)
        check.request_id(request.request_id)
        check.done()
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
        check = RequestCheck()
        check.uuid("reservation_id", request.reservation_id)
        check.done()
        reservation = await self._inventory.get_reservation(
            require_caller(), request.reservation_id
        )
        return pb.GetReservationResponse(reservation=reservation_message(reservation))

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        check = RequestCheck()
        check.uuid("product_id", request.product_id)
        delta = checks.stock_delta(check, request.delta)
        reason = checks.stock_reason(check, request.reason)
        check.request_id(request.request_id)
        check.done()
        caller = require_caller()

        async def adjust(session: AsyncSession) -> pb.AdjustStockResponse:
            stock = await self._inventory.adjust(session, caller, request.product_id, delta, reason)
            return pb.AdjustStockResponse(stock=stock_message(stock))

        return await self._writes.run_for(
            "AdjustStock", caller.user_id, request, pb.AdjustStockResponse, adjust
        )
