"""Buying a product with the wallet (the saga is `bff.checkout`)."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter
from fastapi.responses import Response

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.checkout import CheckoutRequest, CheckoutStepFailed, CompletedCheckout
from bff.dependencies import WRITE_LIMITS, CheckoutDep, IdempotencyKey
from bff.openapi import errors
from bff.problems import ProblemResponse, problem_from_rpc_error

__all__ = ["router"]

router = APIRouter(prefix="/v1/checkout", tags=["checkout"])


def _order(done: CompletedCheckout) -> schemas.Order:
    created = done.transaction.create_time
    return schemas.Order(
        status="COMPLETED",
        product_id=done.product.product_id,
        merchant_id=done.product.merchant_id,
        quantity=done.quantity,
        amount=conversions.money(done.amount),
        reservation_id=done.reservation.reservation_id,
        hold_id=done.hold.hold_id,
        transaction_id=done.transaction.transaction_id,
        create_time=created.ToDatetime(tzinfo=UTC) if created.seconds else None,
    )


def _failed(failure: CheckoutStepFailed) -> ProblemResponse:
    problem, headers = problem_from_rpc_error(failure.error)
    problem.metadata["checkout_step"] = failure.step
    problem.metadata["checkout_state"] = "NOTHING_HELD" if failure.compensated else "PENDING"
    return ProblemResponse(
        problem.model_dump(mode="json"), status_code=problem.status, headers=headers
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.Order,
    responses=errors(401, 404, 413, 429),
    dependencies=WRITE_LIMITS,
    summary="Buy a product with the wallet",
)
async def checkout(
    body: schemas.CheckoutRequest,
    key: IdempotencyKey,
    principal: SignedIn,
    saga: CheckoutDep,
) -> schemas.Order | Response:
    """Reserve the units, hold the money, commit the sale, pay the merchant.

    A failure before the sale is committed undoes what was done: the problem's metadata
    has `checkout_step` (product, reserve, hold, commit, capture) and `checkout_state`:
    `NOTHING_HELD` (no stock or money of this checkout is held) or `PENDING` (something
    may still be held, or the sale is committed and the payment not yet through): retry
    with the same `Idempotency-Key` to finish or undo it. A retry of a completed checkout
    returns the same order without buying again. Typical reasons: `OUT_OF_STOCK`,
    `INSUFFICIENT_FUNDS`, `PRICE_CHANGED` (metadata has the current price),
    `SELF_PURCHASE`, `PRODUCT_NOT_FOUND` (step `product`).
    """
    try:
        done = await saga.run(
            CheckoutRequest(
                user_id=principal.user_id,
                metadata=principal.metadata,
                idempotency_key=key,
                product_id=body.product_id,
                quantity=body.quantity,
                unit_price=conversions.money_proto(body.unit_price),
            )
        )
    except CheckoutStepFailed as failure:
        return _failed(failure)
    return _order(done)
