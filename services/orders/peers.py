"""The catalogue and the wallet as the saga calls them: with the service's own token,
a deadline per call, and every failure sorted into "refused" or "outcome unknown".

One caller for every step, on the synchronous path as in the reconciler: the peers scope
their idempotency keys per caller, so only a single caller makes a step replayable by
whichever path comes next. The user's token would also be gone by the time the
reconciler needs to act (access tokens live 15 minutes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.catalogue.v1 import catalogue_service_pb2_grpc
from superapp.type.v1 import money_pb2
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb
from superapp.wallet.v1 import wallet_service_pb2_grpc

from services.auth.service_token import ServiceToken
from services.runtime.status_details import StatusDetails

__all__ = ["PeerFailure", "Peers", "Refused", "Unreachable"]

T = TypeVar("T")

# A refusal: the peer looked at the request and said no, so it had no effect.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


@dataclass(frozen=True, slots=True)
class PeerFailure:
    """Why a call to a peer failed, as the peer said it (or the transport's code)."""

    code: grpc.StatusCode
    reason: str
    """The peer's ErrorInfo reason, or the status code's name when it sent none."""
    domain: str
    """The peer's ErrorInfo domain; empty when it sent none."""
    message: str
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> PeerFailure:
        """The failure `error` reports."""
        info = StatusDetails.of(error).error_info
        if info is not None:
            return cls(
                error.code(), info.reason, info.domain, error.details() or "", dict(info.metadata)
            )
        # No ErrorInfo: the transport's own words could name internal addresses.
        return cls(error.code(), error.code().name, "", error.code().name)


class Refused(Exception):
    """The peer refused the step; it had no effect."""

    def __init__(self, failure: PeerFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class Unreachable(Exception):
    """The step's outcome is unknown (no answer, a deadline, the peer or identity away);
    replaying it with the same request id finds out."""

    def __init__(self, failure: PeerFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _duration(value: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration


class Peers:
    """The saga's calls to the catalogue and the wallet."""

    def __init__(
        self,
        catalogue: grpc.aio.Channel,
        wallet: grpc.aio.Channel,
        token: ServiceToken,
        *,
        timeout_seconds: float,
    ) -> None:
        self._catalogue = catalogue_service_pb2_grpc.CatalogueServiceStub(catalogue)
        self._wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet)
        self._token = token
        self._timeout = timeout_seconds

    async def _call(self, method: Callable[..., Awaitable[T]], request: Message) -> T:
        """`method(request)` with the service's token and the step's deadline."""
        try:
            return await method(
                request, metadata=await self._token.metadata(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            failure = PeerFailure.of(error)
            if error.code() in _REFUSALS:
                raise Refused(failure) from None
            raise Unreachable(failure) from None

    # Catalogue

    async def product(self, product_id: str) -> catalogue_pb.Product:
        """The product as the catalogue shows it now."""
        request = catalogue_pb.GetProductRequest(product_id=product_id)
        reply = await self._call(self._catalogue.GetProduct, request)
        return reply.product

    async def reserve(
        self, *, product_id: str, quantity: int, user_id: str, ttl: timedelta, request_id: str
    ) -> catalogue_pb.Reservation:
        """Reserve units for `user_id` (or replay that reservation)."""
        request = catalogue_pb.ReserveStockRequest(
            product_id=product_id,
            quantity=quantity,
            ttl=_duration(ttl),
            request_id=request_id,
            user_id=user_id,
        )
        reply = await self._call(self._catalogue.ReserveStock, request)
        return reply.reservation

    async def reservation(self, reservation_id: str) -> catalogue_pb.Reservation:
        """The reservation as it is now."""
        request = catalogue_pb.GetReservationRequest(reservation_id=reservation_id)
        reply = await self._call(self._catalogue.GetReservation, request)
        return reply.reservation

    async def commit(self, reservation_id: str, request_id: str) -> catalogue_pb.Reservation:
        """Sell the reserved units."""
        request = catalogue_pb.CommitReservationRequest(
            reservation_id=reservation_id, request_id=request_id
        )
        reply = await self._call(self._catalogue.CommitReservation, request)
        return reply.reservation

    async def release(self, reservation_id: str, request_id: str) -> catalogue_pb.Reservation:
        """Give the reserved units back."""
        request = catalogue_pb.ReleaseReservationRequest(
            reservation_id=reservation_id, request_id=request_id
        )
        reply = await self._call(self._catalogue.ReleaseReservation, request)
        return reply.reservation

    async def restock(
        self, *, product_id: str, quantity: int, reason: str, request_id: str
    ) -> None:
        """Return sold units to the product's stock."""
        request = catalogue_pb.AdjustStockRequest(
            product_id=product_id, delta=quantity, reason=reason, request_id=request_id
        )
        await self._call(self._catalogue.AdjustStock, request)

    # Wallet

    async def hold(
        self,
        *,
        user_id: str,
        amount: money_pb2.Money,
        ttl: timedelta,
        description: str,
        request_id: str,
    ) -> wallet_pb.Hold:
        """Hold the buyer's funds (or replay that hold)."""
        request = wallet_pb.CreateHoldRequest(
            user_id=user_id,
            amount=amount,
            ttl=_duration(ttl),
            description=description,
            request_id=request_id,
        )
        reply = await self._call(self._wallet.CreateHold, request)
        return reply.hold

    async def get_hold(self, hold_id: str) -> wallet_pb.Hold:
        """The hold as it is now."""
        request = wallet_pb.GetHoldRequest(hold_id=hold_id)
        reply = await self._call(self._wallet.GetHold, request)
        return reply.hold

    async def capture(self, hold_id: str, to_user_id: str, request_id: str) -> str:
        """Move the held funds to the merchant; the transaction's id."""
        request = wallet_pb.CaptureHoldRequest(
            hold_id=hold_id, to_user_id=to_user_id, request_id=request_id
        )
        reply = await self._call(self._wallet.CaptureHold, request)
        return reply.transaction.transaction_id

    async def void(self, hold_id: str, request_id: str) -> None:
        """Release the held funds."""
        request = wallet_pb.VoidHoldRequest(hold_id=hold_id, request_id=request_id)
        await self._call(self._wallet.VoidHold, request)
