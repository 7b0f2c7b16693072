"""Buying a product with the wallet: a thin call to the orders service's CreateOrder."""

from __future__ import annotations

from fastapi import APIRouter
from superapp.orders.v1 import orders_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import WRITE_LIMITS, IdempotencyKey, UpstreamsDep
from bff.openapi import errors

__all__ = ["router"]

router = APIRouter(prefix="/v1/checkout", tags=["checkout"])


@router.post(
    "",
    status_code=201,
    response_model=schemas.Order,
    responses=errors(401, 404, 409, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Buy a product with the wallet",
)
async def checkout(
    body: schemas.CheckoutRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.Order:
    """Reserve the units, hold the money, commit the sale, pay the merchant: the order.

    201 with the order once its units are sold: `COMPLETED`, or `PAYMENT_PENDING` when
    the wallet could not take the payment yet (the orders service collects it; see
    `GET /v1/me/orders/{id}`). A failure's metadata has the `order_id` (once the order
    exists), `checkout_step` (product, reserve, hold, commit, capture) and
    `checkout_state`: `NOTHING_HELD` (nothing of this checkout is held; the same
    `Idempotency-Key` may try again, e.g. after a top-up) or `PENDING` (something may
    still be held: the orders service settles it, and a retry with the same key resumes
    it). A retry of a completed checkout returns the same order without buying again.
    Typical reasons: `OUT_OF_STOCK`, `INSUFFICIENT_FUNDS`, `PRICE_CHANGED` (metadata has
    the current price), `SELF_PURCHASE`, `PRODUCT_NOT_FOUND` (step `product`),
    `IDEMPOTENCY_KEY_REUSED`, 409 `ORDER_IN_PROGRESS`.
    """
    reply = await upstreams.orders.CreateOrder(
        pb.CreateOrderRequest(
            product_id=body.product_id,
            quantity=body.quantity,
            unit_price=conversions.money_proto(body.unit_price),
            request_id=key,
        ),
        metadata=principal.metadata,
    )
    return conversions.order(reply.order)
