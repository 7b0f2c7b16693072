"""Orders: the signed-in user's purchases and mini-app payments, and a merchant's sales."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from superapp.orders.v1 import orders_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import PageSize, PageToken, UpstreamsDep, next_token
from bff.openapi import errors
from bff.schemas import Uuid

__all__ = ["router"]

router = APIRouter(tags=["orders"])


@router.get(
    "/v1/me/orders",
    response_model=schemas.OrderPage,
    responses=errors(401),
    summary="My orders",
)
async def list_my_orders(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.OrderPage:
    """The signed-in user's orders in every status, newest first."""
    reply = await upstreams.orders.ListOrders(
        pb.ListOrdersRequest(
            buyer_id=principal.user_id, page_size=page_size, page_token=page_token or ""
        ),
        metadata=principal.metadata,
    )
    return schemas.OrderPage(
        orders=[conversions.order(order) for order in reply.orders],
        next_page_token=next_token(reply.next_page_token),
    )


@router.get(
    "/v1/me/orders/{order_id}",
    response_model=schemas.Order,
    responses=errors(401, 404),
    summary="One of my orders",
)
async def get_my_order(
    order_id: Annotated[Uuid, Path(description="The order.")],
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Order:
    """An order with its items (none for a payment order, which has a description),
    status and timeline. 404 `ORDER_NOT_FOUND` for an order
    that does not exist or is not the user's (as buyer or as its merchant)."""
    reply = await upstreams.orders.GetOrder(
        pb.GetOrderRequest(order_id=order_id), metadata=principal.metadata
    )
    return conversions.order(reply.order)


@router.get(
    "/v1/merchant/orders",
    response_model=schemas.OrderPage,
    responses=errors(401),
    tags=["merchant"],
    summary="My sales",
)
async def list_my_sales(
    principal: SignedIn,
    upstreams: UpstreamsDep,
    page_size: PageSize = 20,
    page_token: PageToken = None,
) -> schemas.OrderPage:
    """Orders of the signed-in merchant's products whose units were sold, and payments
    to the merchant whose funds were held (PAYMENT_PENDING, COMPLETED, REVERSED),
    newest first."""
    reply = await upstreams.orders.ListMerchantOrders(
        pb.ListMerchantOrdersRequest(
            merchant_id=principal.user_id, page_size=page_size, page_token=page_token or ""
        ),
        metadata=principal.metadata,
    )
    return schemas.OrderPage(
        orders=[conversions.order(order) for order in reply.orders],
        next_page_token=next_token(reply.next_page_token),
    )
