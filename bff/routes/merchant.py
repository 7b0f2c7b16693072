"""A merchant's own products: list (drafts too), create, change, publish, restock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from google.protobuf.field_mask_pb2 import FieldMask
from superapp.catalogue.v1 import catalogue_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import (
    WRITE_LIMITS,
    IdempotencyKey,
    PageSize,
    PageToken,
    UpstreamsDep,
    next_token,
)
from bff.openapi import errors
from bff.schemas import Uuid
from services.runtime.errors import FieldViolation, InvalidArgument

__all__ = ["router"]

router = APIRouter(prefix="/v1/merchant/products", tags=["merchant"])

ProductId = Annotated[Uuid, Path(description="The product.")]
_EVERY_STATUS = [pb.PRODUCT_STATUS_DRAFT, pb.PRODUCT_STATUS_PUBLISHED, pb.PRODUCT_STATUS_ARCHIVED]


@router.get(
    "",
    response_model=schemas.ProductPage,
    responses=errors(401, 403),
    summary="My products, in every status",
)
async def list_my_products(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.ProductPage:
    """The signed-in merchant's products, drafts and archived ones included, newest first."""
    reply = await upstreams.catalogue.ListProducts(
        pb.ListProductsRequest(
            merchant_id=principal.user_id,
            statuses=_EVERY_STATUS,
            page_size=page_size,
            page_token=page_token or "",
        ),
        metadata=principal.metadata,
    )
    return schemas.ProductPage(
        products=[conversions.product(p) for p in reply.products],
        next_page_token=next_token(reply.next_page_token),
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Product,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Create a product (merchant)",
)
async def create_product(
    body: schemas.ProductDraft,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Product:
    """A new DRAFT product with no stock, owned by the signed-in merchant."""
    reply = await upstreams.catalogue.CreateProduct(
        pb.CreateProductRequest(
            product=pb.Product(
                title=body.title,
                description=body.description,
                price=conversions.money_proto(body.price),
                category_id=body.category_id or "",
                attributes=body.attributes,
                image_urls=body.image_urls,
            ),
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return conversions.product(reply.product)


@router.patch(
    "/{product_id}",
    response_model=schemas.Product,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Change a product (merchant)",
)
async def update_product(
    product_id: ProductId,
    body: schemas.ProductChanges,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Product:
    """Replace the fields present in the body; the others stay as they are."""
    paths = sorted(body.model_fields_set)
    if not paths:
        raise InvalidArgument([FieldViolation("body", "name at least one field", "REQUIRED")])
    product = pb.Product(
        product_id=product_id,
        title=body.title or "",
        description=body.description or "",
        category_id=body.category_id or "",
        attributes=body.attributes or {},
        image_urls=body.image_urls or [],
    )
    if body.price is not None:
        product.price.CopyFrom(conversions.money_proto(body.price))
    reply = await upstreams.catalogue.UpdateProduct(
        pb.UpdateProductRequest(
            product=product, update_mask=FieldMask(paths=paths), request_id=key
        ),
        metadata=principal.metadata,
    )
    return conversions.product(reply.product)


@router.post(
    "/{product_id}/publish",
    response_model=schemas.Product,
    responses=errors(401, 403, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Publish a draft (merchant)",
)
async def publish_product(
    product_id: ProductId, key: IdempotencyKey, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.Product:
    """Make a DRAFT visible, listed, searchable and buyable."""
    reply = await upstreams.catalogue.PublishProduct(
        pb.PublishProductRequest(product_id=product_id, request_id=key),
        metadata=principal.metadata,
    )
    return conversions.product(reply.product)


@router.post(
    "/{product_id}/stock-adjustments",
    response_model=schemas.Stock,
    responses=errors(401, 403, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Receive or remove stock (merchant)",
)
async def adjust_stock(
    product_id: ProductId,
    body: schemas.StockAdjustment,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Stock:
    """Change the units on hand by `delta`; never below what is reserved."""
    reply = await upstreams.catalogue.AdjustStock(
        pb.AdjustStockRequest(
            product_id=product_id, delta=body.delta, reason=body.reason, request_id=key
        ),
        metadata=principal.metadata,
    )
    return conversions.stock(reply.stock)
