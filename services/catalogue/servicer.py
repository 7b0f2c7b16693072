"""CatalogueService over gRPC: translates proto ⇄ domain, nothing more.

RPCs this release does not serve yet fall through to the generated base class,
which the error interceptor answers with UNIMPLEMENTED.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from superapp.catalogue.v1 import catalogue_service_pb2 as pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc

from services.catalogue.categories import CategoryTree, CategoryView
from services.runtime.pagination import decode_page_token, encode_page_token
from services.runtime.validation import RequestCheck

__all__ = ["CatalogueServicer"]

Context = grpc.aio.ServicerContext[Any, Any]


def _category(view: CategoryView) -> pb.Category:
    created = Timestamp()
    created.FromDatetime(view.create_time)
    return pb.Category(
        category_id=view.category_id,
        name=view.name,
        parent_category_id=view.parent_category_id or "",
        product_count=view.product_count,
        create_time=created,
    )


class CatalogueServicer(catalogue_service_pb2_grpc.CatalogueServiceServicer):
    """The catalogue gRPC service."""

    def __init__(self, categories: CategoryTree) -> None:
        self._categories = categories

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
        after = decode_page_token(request.page_token, scope, key_size=1)
        page = await self._categories.list(
            request.parent_category_id or None, page_size, str(after[0]) if after else None
        )
        next_token = ""
        if page.has_more:
            next_token = encode_page_token([page.categories[-1].category_id], scope)
        return pb.ListCategoriesResponse(
            categories=[_category(view) for view in page.categories], next_page_token=next_token
        )
