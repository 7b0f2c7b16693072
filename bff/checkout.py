"""Checkout as a saga over catalogue and wallet, resumable from any point by its key.

The steps of one attempt: reserve stock → hold funds → commit the reservation (the pivot:
the units are sold) → capture the hold to the merchant. Before the pivot any failure is
compensated (void the hold, then release the reservation), so no money or stock stays
stuck; after it the only way is forward, and a failed capture leaves the hold pending for
a retry to capture.

No saga state is kept here. Every upstream `request_id` is derived from (user,
Idempotency-Key, attempt, step), so a retried checkout replays each step upstream
(AIP-155): a step that happened returns its original response, a step that did not
happens now. That makes a retry after any crash or lost response resume exactly where
the first request stopped, and a retry of a completed checkout return the same order with
no second effect. Every request field of a replay must equal the original's, so each step
sends only values derived from the checkout request itself: the amount is the client's
`unit_price` times `quantity` (checked against the product's current price before the
pivot), the description names the product by id, the lifetimes are settings.

A compensated attempt is dead: its reservation is RELEASED. A retry notices that (the
replayed reservation reads RELEASED or EXPIRED) and moves on to attempt n + 1, whose
request ids are fresh, so a checkout that failed for want of funds can succeed with the
same key after a top-up. Catalogue remembers request ids for at least 24 hours, which is
how long a key is honoured.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.type.v1 import money_pb2
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb

from bff.upstreams import Upstreams
from services.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument

__all__ = [
    "MAX_ATTEMPTS",
    "Checkout",
    "CheckoutRequest",
    "CheckoutStepFailed",
    "CompletedCheckout",
    "StepObserver",
    "step_request_id",
]

_log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
"""Compensated attempts one key may go through before the checkout gives up."""

_MONEY_LIMIT = 10**15
# A step that failed with one of these codes may or may not have taken effect upstream.
_OUTCOME_UNKNOWN = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DATA_LOSS,
    }
)
_CAPTURE_TRIES = 3
_CAPTURE_BACKOFF_SECONDS = 0.2

StepObserver = Callable[[str], Awaitable[None]]
"""Called after each step that succeeded, with its name (a seam for failure tests)."""


def step_request_id(user_id: str, key: str, attempt: int, step: str) -> str:
    """The upstream `request_id` of one step: the same on every retry of the checkout."""
    digest = hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()[:40]
    return f"checkout-{digest}-{attempt}-{step}"


def _reason(error: grpc.aio.AioRpcError) -> str:
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError is a Call
    except ValueError:
        return ""
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


class CheckoutStepFailed(Exception):
    """A step failed; `compensated` says whether the checkout now holds nothing.

    When it is False, stock or funds may stay held until their expiry, or the sale is
    committed and its payment not yet captured: a retry with the same key settles it.
    """

    def __init__(self, step: str, error: grpc.aio.AioRpcError, *, compensated: bool) -> None:
        super().__init__(f"checkout step {step} failed: {error.code().name}")
        self.step = step
        self.error = error
        self.compensated = compensated


@dataclass(frozen=True)
class CheckoutRequest:
    """What the user buys, at which price, under which key."""

    user_id: str
    metadata: tuple[tuple[str, str], ...]
    idempotency_key: str
    product_id: str
    quantity: int
    unit_price: money_pb2.Money


@dataclass(frozen=True)
class CompletedCheckout:
    """A checkout that sold the units and moved the money."""

    product: catalogue_pb.Product
    quantity: int
    amount: money_pb2.Money
    reservation: catalogue_pb.Reservation
    hold: wallet_pb.Hold
    transaction: wallet_pb.Transaction


@dataclass(frozen=True)
class _Attempt:
    request: CheckoutRequest
    number: int
    amount: money_pb2.Money

    def request_id(self, step: str) -> str:
        return step_request_id(
            self.request.user_id, self.request.idempotency_key, self.number, step
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self.request.metadata


class Checkout:
    """Runs checkouts against catalogue and wallet on the caller's own token."""

    def __init__(
        self,
        upstreams: Upstreams,
        *,
        reservation_ttl: timedelta,
        hold_ttl: timedelta,
        observer: StepObserver | None = None,
    ) -> None:
        if hold_ttl <= reservation_ttl:
            raise ValueError("a hold must outlive the reservation it pays for")
        self._catalogue = upstreams.catalogue
        self._wallet = upstreams.wallet
        self._reservation_ttl = Duration()
        self._reservation_ttl.FromTimedelta(reservation_ttl)
        self._hold_ttl = Duration()
        self._hold_ttl.FromTimedelta(hold_ttl)
        self._observer = observer

    async def run(self, request: CheckoutRequest) -> CompletedCheckout:
        """Buy, or resume or replay the checkout of `request.idempotency_key`."""
        total = request.unit_price.amount_minor * request.quantity
        if total >= _MONEY_LIMIT:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "quantity",
                        f"unit_price times quantity must be below {_MONEY_LIMIT} minor units",
                        "OUT_OF_RANGE",
                    )
                ]
            )
        amount = money_pb2.Money(currency_code=request.unit_price.currency_code, amount_minor=total)
        try:
            product = (
                await self._catalogue.GetProduct(
                    catalogue_pb.GetProductRequest(product_id=request.product_id),
                    metadata=request.metadata,
                )
            ).product
        except grpc.aio.AioRpcError as error:
            raise CheckoutStepFailed("product", error, compensated=True) from None
        if product.merchant_id == request.user_id:
            raise FailedPrecondition(
                "SELF_PURCHASE",
                "merchants cannot buy their own products",
                metadata={"product_id": product.product_id},
            )
        for number in range(MAX_ATTEMPTS):
            attempt = _Attempt(request, number, amount)
            reservation = await self._reserve(attempt)
            status = reservation.status
            if status == catalogue_pb.RESERVATION_STATUS_RELEASED:
                continue  # compensated by an earlier request: start afresh
            if status == catalogue_pb.RESERVATION_STATUS_EXPIRED:
                # An earlier request stopped before the pivot and nobody retried in time.
                await self._discard_hold(attempt)
                continue
            committed = status == catalogue_pb.RESERVATION_STATUS_COMMITTED
            if not committed and not _same_money(product.price, request.unit_price):
                await self._discard_hold(attempt)
                await self._release(attempt, reservation)
                raise FailedPrecondition(
                    "PRICE_CHANGED",
                    "the product's price is not the one the checkout was asked to pay",
                    metadata={
                        "product_id": product.product_id,
                        "currency_code": product.price.currency_code,
                        "price_minor": str(product.price.amount_minor),
                    },
                )
            return await self._complete(attempt, product, reservation, committed=committed)
        raise FailedPrecondition(
            "CHECKOUT_ATTEMPTS_EXHAUSTED",
            f"this Idempotency-Key was used for {MAX_ATTEMPTS} failed checkouts; use a new one",
        )

    async def _step_done(self, step: str) -> None:
        if self._observer is not None:
            await self._observer(step)

    async def _reserve(self, attempt: _Attempt) -> catalogue_pb.Reservation:
        """The attempt's reservation (made now, or replayed) in its current state."""
        request = attempt.request
        try:
            reserved = await self._catalogue.ReserveStock(
                catalogue_pb.ReserveStockRequest(
                    product_id=request.product_id,
                    quantity=request.quantity,
                    ttl=self._reservation_ttl,
                    request_id=attempt.request_id("reserve"),
                ),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError as error:
            # Refused: nothing is held. Lost: a reservation may exist; it expires by
            # itself, and a retry with the same key finds it.
            unknown = error.code() in _OUTCOME_UNKNOWN
            raise CheckoutStepFailed("reserve", error, compensated=not unknown) from None
        try:
            # A replay answers with the reservation as it was then; ask for it as it is.
            current = await self._catalogue.GetReservation(
                catalogue_pb.GetReservationRequest(
                    reservation_id=reserved.reservation.reservation_id
                ),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError as error:
            raise CheckoutStepFailed("reserve", error, compensated=False) from None
        await self._step_done("reserve")
        return current.reservation

    async def _create_hold(self, attempt: _Attempt) -> wallet_pb.Hold:
        reply = await self._wallet.CreateHold(
            wallet_pb.CreateHoldRequest(
                user_id=attempt.request.user_id,
                amount=attempt.amount,
                ttl=self._hold_ttl,
                description=(f"{attempt.request.quantity} x product {attempt.request.product_id}"),
                request_id=attempt.request_id("hold"),
            ),
            metadata=attempt.metadata,
        )
        return reply.hold

    async def _complete(
        self,
        attempt: _Attempt,
        product: catalogue_pb.Product,
        reservation: catalogue_pb.Reservation,
        *,
        committed: bool,
    ) -> CompletedCheckout:
        try:
            hold = await self._create_hold(attempt)
        except grpc.aio.AioRpcError as error:
            if committed or _reason(error) == "IDEMPOTENCY_KEY_REUSED":
                # Past the pivot nothing may be undone; a reused key is not ours to touch.
                raise CheckoutStepFailed("hold", error, compensated=False) from None
            voided = error.code() not in _OUTCOME_UNKNOWN or await self._discard_hold(attempt)
            released = await self._release(attempt, reservation)
            raise CheckoutStepFailed("hold", error, compensated=voided and released) from None
        await self._step_done("hold")
        if not committed:
            await self._commit(attempt, reservation, hold)
        await self._step_done("commit")
        transaction = await self._capture(attempt, product, hold)
        await self._step_done("capture")
        return CompletedCheckout(
            product=product,
            quantity=attempt.request.quantity,
            amount=attempt.amount,
            reservation=reservation,
            hold=hold,
            transaction=transaction,
        )

    async def _commit(
        self,
        attempt: _Attempt,
        reservation: catalogue_pb.Reservation,
        hold: wallet_pb.Hold,
    ) -> None:
        try:
            await self._catalogue.CommitReservation(
                catalogue_pb.CommitReservationRequest(
                    reservation_id=reservation.reservation_id,
                    request_id=attempt.request_id("commit"),
                ),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError as error:
            if _reason(error) == "IDEMPOTENCY_KEY_REUSED":
                raise CheckoutStepFailed("commit", error, compensated=False) from None
            if error.code() in _OUTCOME_UNKNOWN:
                state = await self._reservation_state(attempt, reservation)
                if state == catalogue_pb.RESERVATION_STATUS_COMMITTED:
                    return  # it went through; only the answer was lost
                if state is None:
                    # Cannot tell whether the units were sold: leave both as they are.
                    # The reservation expires by itself; a retry finds out and finishes
                    # or undoes the attempt.
                    raise CheckoutStepFailed("commit", error, compensated=False) from None
            voided = await self._void(attempt, hold)
            released = await self._release(attempt, reservation)
            raise CheckoutStepFailed("commit", error, compensated=voided and released) from None

    async def _capture(
        self, attempt: _Attempt, product: catalogue_pb.Product, hold: wallet_pb.Hold
    ) -> wallet_pb.Transaction:
        request = wallet_pb.CaptureHoldRequest(
            hold_id=hold.hold_id,
            to_user_id=product.merchant_id,
            request_id=attempt.request_id("capture"),
        )
        for tries_left in range(_CAPTURE_TRIES - 1, -1, -1):
            try:
                reply = await self._wallet.CaptureHold(request, metadata=attempt.metadata)
            except grpc.aio.AioRpcError as error:
                # The units are sold: the money must follow. The capture is idempotent by
                # its request id, so trying again is safe.
                if tries_left and error.code() in _OUTCOME_UNKNOWN:
                    await asyncio.sleep(_CAPTURE_BACKOFF_SECONDS)
                    continue
                _log.error(
                    "checkout capture failed after the sale was committed",
                    extra={
                        "hold_id": hold.hold_id,
                        "product_id": product.product_id,
                        "code": error.code().name,
                    },
                )
                raise CheckoutStepFailed("capture", error, compensated=False) from None
            return reply.transaction
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reservation_state(
        self, attempt: _Attempt, reservation: catalogue_pb.Reservation
    ) -> int | None:
        try:
            reply = await self._catalogue.GetReservation(
                catalogue_pb.GetReservationRequest(reservation_id=reservation.reservation_id),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError:
            return None
        state: int = reply.reservation.status
        return state

    async def _release(self, attempt: _Attempt, reservation: catalogue_pb.Reservation) -> bool:
        """Give the units back; True when they are free (also: already released or expired)."""
        try:
            await self._catalogue.ReleaseReservation(
                catalogue_pb.ReleaseReservationRequest(
                    reservation_id=reservation.reservation_id,
                    request_id=attempt.request_id("release"),
                ),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError as error:
            if _reason(error) in {"RESERVATION_EXPIRED", "RESERVATION_ALREADY_RESOLVED"}:
                return True
            _log.warning(
                "checkout could not release a reservation; it expires by itself",
                extra={"reservation_id": reservation.reservation_id, "code": error.code().name},
            )
            return False
        return True

    async def _void(self, attempt: _Attempt, hold: wallet_pb.Hold) -> bool:
        """Release the funds; True when they are free (also: already voided or expired)."""
        try:
            await self._wallet.VoidHold(
                wallet_pb.VoidHoldRequest(
                    hold_id=hold.hold_id, request_id=attempt.request_id("void")
                ),
                metadata=attempt.metadata,
            )
        except grpc.aio.AioRpcError as error:
            if _reason(error) in {"HOLD_EXPIRED", "HOLD_ALREADY_RESOLVED"}:
                return True
            _log.warning(
                "checkout could not void a hold; it expires by itself",
                extra={"hold_id": hold.hold_id, "code": error.code().name},
            )
            return False
        return True

    async def _discard_hold(self, attempt: _Attempt) -> bool:
        """Make sure the attempt holds no funds, without knowing whether it placed a hold.

        Replaying the attempt's CreateHold answers with its hold if there is one (and
        places it otherwise, which the void then undoes at once); True when no funds of
        the attempt stay held.
        """
        try:
            hold = await self._create_hold(attempt)
        except grpc.aio.AioRpcError as error:
            # Refused outright (e.g. insufficient funds): no hold of the attempt exists.
            unknown = error.code() in _OUTCOME_UNKNOWN
            return not (unknown or _reason(error) == "IDEMPOTENCY_KEY_REUSED")
        return await self._void(attempt, hold)


def _same_money(left: money_pb2.Money, right: money_pb2.Money) -> bool:
    return (left.currency_code, left.amount_minor) == (right.currency_code, right.amount_minor)
