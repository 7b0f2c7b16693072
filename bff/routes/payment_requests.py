"""Payment requests over HTTP: a mini-app's backend asks (with its token, scope
`wallet.pay`) and polls; the shell shows the request to its user, who confirms or
declines it with their own token. miniapps decides everything (its Create/Get/Confirm/
DeclinePaymentRequest); the mini-app's token is forwarded to it as the mini-app's
credential, and miniapps checks it again (kind, scope, grant in force).

Confirm and decline take no Idempotency-Key: each is idempotent by nature (a repeat
answers the request as it stands and changes nothing, so a retried confirmation pays
once). Creating takes the mini-app's own key in `Idempotency-Key`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from superapp.miniapps.v1 import miniapps_service_pb2 as pb

from bff import conversions, schemas
from bff.authentication import SignedIn
from bff.dependencies import WRITE_LIMITS, IdempotencyKey, UpstreamsDep
from bff.mini_app_callers import MINI_APP_API_PREFIX, MiniAppCaller, with_scope
from bff.openapi import errors
from bff.schemas import Uuid

__all__ = ["mini_app_router", "shell_router"]

WALLET_PAY = "wallet.pay"

mini_app_router = APIRouter(prefix=MINI_APP_API_PREFIX, tags=["mini-app API"])
shell_router = APIRouter(prefix="/v1/me", tags=["payment requests"])

PaymentRequestId = Annotated[Uuid, Path(description="The payment request's id.")]
Paying = Annotated[MiniAppCaller, Depends(with_scope(WALLET_PAY))]

# A request is about one user: no shared cache may keep it.
_PRIVATE = "no-store"


def _forwarded(request: Request) -> tuple[tuple[str, str], ...]:
    """The mini-app's own token, for miniapps to check and act on (the dependency has
    verified it already: the header is there and is a Bearer)."""
    return (("authorization", request.headers["authorization"]),)


@mini_app_router.post(
    "/payment-requests",
    status_code=201,
    response_model=schemas.PaymentRequest,
    responses=errors(400, 401, 403, 413, 422, 429),
    summary="Ask the user to pay (scope wallet.pay)",
)
async def create_payment_request(
    body: schemas.PaymentRequestBody,
    key: IdempotencyKey,
    request: Request,
    response: Response,
    caller: Paying,
    upstreams: UpstreamsDep,
) -> schemas.PaymentRequest:
    """Asks the user the token stands for to pay `amount` to `merchant_id`. Nothing
    moves until the user confirms it in the app (within 15 minutes). A retry with the
    same Idempotency-Key and body answers the request made first, as it stands; the same
    key with another body is 422 `IDEMPOTENCY_KEY_REUSED`. 403 `SCOPE_NOT_GRANTED`
    without `wallet.pay`; 400 `MINI_APP_SUSPENDED` for a suspended mini-app."""
    reply = await upstreams.miniapps.CreatePaymentRequest(
        pb.CreatePaymentRequestRequest(
            merchant_id=body.merchant_id,
            amount=conversions.money_proto(body.amount),
            description=body.description,
            idempotency_key=key,
        ),
        metadata=_forwarded(request),
    )
    response.headers["Cache-Control"] = _PRIVATE
    return conversions.payment_request(reply.payment_request)


@mini_app_router.get(
    "/payment-requests/{payment_request_id}",
    response_model=schemas.PaymentRequest,
    responses=errors(401, 403, 404, 429),
    summary="One of the mini-app's payment requests (scope wallet.pay)",
)
async def get_mini_app_payment_request(
    payment_request_id: PaymentRequestId,
    request: Request,
    response: Response,
    caller: Paying,
    upstreams: UpstreamsDep,
) -> schemas.PaymentRequest:
    """The request as it stands (poll it, or rely on the webhook events). Another
    mini-app's request is 404 `PAYMENT_REQUEST_NOT_FOUND`."""
    reply = await upstreams.miniapps.GetPaymentRequest(
        pb.GetPaymentRequestRequest(payment_request_id=payment_request_id),
        metadata=_forwarded(request),
    )
    response.headers["Cache-Control"] = _PRIVATE
    return conversions.payment_request(reply.payment_request)


@shell_router.get(
    "/payment-requests/{payment_request_id}",
    response_model=schemas.PaymentRequest,
    responses=errors(401, 404),
    summary="A payment request made of the signed-in user",
)
async def get_my_payment_request(
    payment_request_id: PaymentRequestId,
    response: Response,
    principal: SignedIn,
    upstreams: UpstreamsDep,
) -> schemas.PaymentRequest:
    """What a mini-app asks the user to pay, for the confirmation screen. A request
    made of another user is 404 `PAYMENT_REQUEST_NOT_FOUND`."""
    reply = await upstreams.miniapps.GetPaymentRequest(
        pb.GetPaymentRequestRequest(payment_request_id=payment_request_id),
        metadata=principal.metadata,
    )
    response.headers["Cache-Control"] = _PRIVATE
    return conversions.payment_request(reply.payment_request)


@shell_router.post(
    "/payment-requests/{payment_request_id}/confirm",
    response_model=schemas.PaymentRequest,
    responses=errors(400, 401, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Confirm a payment request: pay it",
)
async def confirm_payment_request(
    payment_request_id: PaymentRequestId, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.PaymentRequest:
    """The user's confirmation: the money moves now (a hold, then its capture, recorded
    as an order). The answer is the request as it then stands: SUCCEEDED with
    `order_id`, FAILED with `failure_reason` (for example INSUFFICIENT_FUNDS), or
    CONFIRMED while the payment is finished in the background. A repeat pays nothing
    more. 404 for another user's request; 400 `PAYMENT_REQUEST_EXPIRED`,
    `PAYMENT_REQUEST_DECLINED`, `MINI_APP_SUSPENDED`."""
    reply = await upstreams.miniapps.ConfirmPaymentRequest(
        pb.ConfirmPaymentRequestRequest(payment_request_id=payment_request_id),
        metadata=principal.metadata,
    )
    return conversions.payment_request(reply.payment_request)


@shell_router.post(
    "/payment-requests/{payment_request_id}/decline",
    response_model=schemas.PaymentRequest,
    responses=errors(400, 401, 404, 429),
    dependencies=WRITE_LIMITS,
    summary="Decline a payment request",
)
async def decline_payment_request(
    payment_request_id: PaymentRequestId, principal: SignedIn, upstreams: UpstreamsDep
) -> schemas.PaymentRequest:
    """The user says no: the request is DECLINED and nothing is paid; the mini-app is
    told. A repeat answers the same. 400 `PAYMENT_REQUEST_ALREADY_CONFIRMED` once
    confirmed, `PAYMENT_REQUEST_EXPIRED` once expired."""
    reply = await upstreams.miniapps.DeclinePaymentRequest(
        pb.DeclinePaymentRequestRequest(payment_request_id=payment_request_id),
        metadata=principal.metadata,
    )
    return conversions.payment_request(reply.payment_request)
