"""The checkout saga over the catalogue and the wallet, driven from the order's row.

An attempt of a product order goes reserve → hold → commit (the pivot: the units are
sold) → capture; one of a payment order goes hold (its pivot) → capture (the steps of
each kind are in `order_kinds`; everything below holds for both).
Every step's outcome is written to the order before the next step starts, and a forward
step is marked `reached` before it is asked of a peer, so a driver that stops anywhere
(crash, deploy, lost lease) leaves an order that the next driver continues: each step's
upstream `request_id` is derived from (order, attempt, step), so a replay returns the
first result instead of doing the step twice.

Directions. The buyer's own call drives an attempt forward. When a step before the pivot
is refused, or its outcome is unknown, the attempt turns to compensation: release the
reservation, then void the hold (in that order: a commit whose answer was lost shows up
as a reservation that can no longer be released because it is COMMITTED, and then the
hold is still there to capture). The reconciler, which acts with nobody waiting, settles
an attempt stopped before the pivot by compensating it, and one past the pivot by
collecting the payment: capture; if the hold expired first, a new hold and its capture;
if the buyer's funds no longer cover one, the units go back to stock (REVERSED).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from google.protobuf.message import Message
from superapp.catalogue.v1 import catalogue_service_pb2 as catalogue_pb
from superapp.orders.v1 import events_pb2
from superapp.type.v1 import money_pb2
from superapp.wallet.v1 import wallet_service_pb2 as wallet_pb

from services.orders.messages import order_message
from services.orders.order_book import OrderBook
from services.orders.order_kinds import steps_of
from services.orders.peers import PeerFailure, Peers, Refused, Unreachable
from services.orders.records import OrderKind, OrderRecord, OrderStatus, Outcome, Step
from services.runtime.clock import Clock
from services.runtime.proto_time import to_timestamp

__all__ = ["Direction", "DriveResult", "OrderSaga", "StepObserver"]

_log = logging.getLogger(__name__)

StepObserver = Callable[[str, str], Awaitable[None]]
"""Told (order id, step name) after each step that succeeded: a seam for failure tests."""

_DESCRIPTION_MAX = 200


class Direction(enum.Enum):
    """Who drives, and so which way an attempt before the pivot goes."""

    FORWARD = "forward"
    """The buyer's call: finish the purchase."""
    SETTLE = "settle"
    """The reconciler: nobody waits, so undo what is not sold and collect what is."""


@dataclass(frozen=True, slots=True)
class DriveResult:
    """Where a drive left the order, and the failure that stopped or ended it."""

    order: OrderRecord
    failure: PeerFailure | None
    """The last refusal (a CANCELLED attempt's cause) or unknown outcome (an order left
    unfinished); None when the drive ran to COMPLETED or to a payment still pending."""
    failure_step: Step
    interrupted: bool
    """The drive stopped on an unknown outcome and the order is not terminal."""


@dataclass(frozen=True, slots=True)
class _Change:
    """What a step did: the new column values and the timeline line."""

    changes: dict[str, Any]
    step: tuple[Step, Outcome, str] | None
    """None: nothing was asked of a peer (there was nothing to undo)."""
    failure: PeerFailure | None = None


def _announce(order: OrderRecord) -> Message | None:
    message = order_message(order)
    occurred = to_timestamp(order.update_time)
    if order.status is OrderStatus.COMPLETED:
        return events_pb2.OrderCompleted(
            order_id=order.order_id, order=message, occur_time=occurred
        )
    if order.status is OrderStatus.CANCELLED:
        return events_pb2.OrderCancelled(
            order_id=order.order_id, order=message, occur_time=occurred
        )
    if order.status is OrderStatus.REVERSED:
        return events_pb2.OrderReversed(order_id=order.order_id, order=message, occur_time=occurred)
    return None


class _Interrupted(Exception):
    def __init__(self, step: Step, failure: PeerFailure) -> None:
        super().__init__(failure.reason)
        self.step = step
        self.failure = failure


class OrderSaga:
    """Drives one order at a time, while its driver holds the order's lease."""

    def __init__(
        self,
        book: OrderBook,
        peers: Peers,
        clock: Clock,
        *,
        reservation_ttl: timedelta,
        hold_ttl: timedelta,
        max_collections: int,
        observer: StepObserver | None = None,
    ) -> None:
        if hold_ttl <= reservation_ttl:
            raise ValueError("a hold must outlive the reservation it pays for")
        self._book = book
        self._peers = peers
        self._clock = clock
        self._reservation_ttl = reservation_ttl
        self._hold_ttl = hold_ttl
        self._max_collections = max_collections
        self._observer = observer
        self._steps: dict[Step, Callable[[OrderRecord, str], Awaitable[_Change]]] = {
            Step.RESERVE: self._reserve,
            Step.HOLD: self._hold,
            Step.COMMIT: self._commit,
            Step.CAPTURE: self._capture,
            Step.REHOLD: self._rehold,
            Step.RESTOCK: self._restock,
            Step.RELEASE: self._release,
            Step.VOID: self._void,
        }

    async def drive(self, order: OrderRecord, owner: str, direction: Direction) -> DriveResult:
        """Run the order's steps until it is terminal, its payment must wait, or a peer
        cannot be reached. Raises `LeaseLost` if another driver took the order over."""
        failure: PeerFailure | None = None
        failure_step = Step.NONE
        kind = steps_of(order.kind)
        while order.next_step is not Step.NONE:
            step = order.next_step
            if step in kind.before_pivot and direction is Direction.SETTLE:
                # Nobody is waiting for this purchase any more: undo it.
                order = await self._book.change(
                    order,
                    owner,
                    {
                        "next_step": kind.undo_from,
                        "failure_reason": order.failure_reason or "ABANDONED",
                        "failure_step": step,
                    },
                )
                continue
            if step in kind.before_pivot:
                # Mark that the peer may now have done it, before asking.
                order = await self._book.change(order, owner, {"reached": step})
            try:
                change = await self._steps[step](order, owner)
            except _Interrupted as stop:
                order = await self._book.change(
                    order, owner, {}, step=(stop.step, Outcome.INTERRUPTED, stop.failure.reason)
                )
                failure, failure_step = stop.failure, stop.step
                if step in kind.before_pivot:
                    # Before the pivot an unknown outcome turns the attempt around at
                    # once, so what can be released now is not left stuck.
                    order = await self._book.change(
                        order,
                        owner,
                        {
                            "next_step": kind.undo_from,
                            "failure_reason": stop.failure.reason,
                            "failure_step": step,
                        },
                    )
                    continue
                return DriveResult(order, failure, failure_step, interrupted=True)
            order = await self._book.change(
                order, owner, change.changes, step=change.step, announce=_announce
            )
            if change.failure is not None and change.step is not None:
                failure, failure_step = change.failure, change.step[0]
            succeeded = change.step is not None and change.step[1] is Outcome.SUCCEEDED
            if succeeded and change.step is not None and self._observer is not None:
                await self._observer(order.order_id, change.step[0].value)
            if order.status is OrderStatus.PAYMENT_PENDING and failure is not None:
                failure = None  # a compensation that found the sale made: going forward
        if order.status is OrderStatus.COMPLETED:
            failure = None
        return DriveResult(order, failure, failure_step, interrupted=False)

    # Forward

    def _amount(self, order: OrderRecord) -> money_pb2.Money:
        return money_pb2.Money(currency_code=order.currency_code, amount_minor=order.total_minor)

    def _description(self, order: OrderRecord) -> str:
        if order.kind is OrderKind.PAYMENT:
            return order.description[:_DESCRIPTION_MAX]  # what the buyer confirmed
        text = f"Order {order.order_id}: {order.quantity} x {order.title}"
        return text[:_DESCRIPTION_MAX]

    async def _reserve_call(self, order: OrderRecord) -> catalogue_pb.Reservation:
        return await self._peers.reserve(
            product_id=order.product_id,
            quantity=order.quantity,
            user_id=order.buyer_id,
            ttl=self._reservation_ttl,
            request_id=order.request_id_of("reserve"),
        )

    async def _hold_call(self, order: OrderRecord, collection: int) -> wallet_pb.Hold:
        return await self._peers.hold(
            user_id=order.buyer_id,
            amount=self._amount(order),
            ttl=self._hold_ttl,
            description=self._description(order),
            request_id=order.request_id_of(f"hold.{collection}"),
        )

    async def _reserve(self, order: OrderRecord, owner: str) -> _Change:
        try:
            reservation = await self._reserve_call(order)
        except Refused as refused:
            # Nothing was reserved, and nothing else is held yet.
            return _Change(
                {
                    "status": OrderStatus.CANCELLED,
                    "next_step": Step.NONE,
                    "reached": Step.NONE,
                    "failure_reason": refused.failure.reason,
                    "failure_step": Step.RESERVE,
                },
                (Step.RESERVE, Outcome.FAILED, refused.failure.reason),
                refused.failure,
            )
        except Unreachable as unknown:
            raise _Interrupted(Step.RESERVE, unknown.failure) from None
        return _Change(
            {"reservation_id": reservation.reservation_id, "next_step": Step.HOLD},
            (Step.RESERVE, Outcome.SUCCEEDED, ""),
        )

    async def _hold(self, order: OrderRecord, owner: str) -> _Change:
        try:
            hold = await self._hold_call(order, 1)
        except Refused as refused:
            failed = {"failure_reason": refused.failure.reason, "failure_step": Step.HOLD}
            if steps_of(order.kind).first is Step.HOLD:
                # The attempt's first step: nothing of it is held, nothing to undo.
                undo = {"status": OrderStatus.CANCELLED, "next_step": Step.NONE}
                reached = Step.NONE
            else:
                undo = {"next_step": Step.RELEASE}
                reached = Step.RESERVE  # no hold exists: nothing to void
            return _Change(
                {**undo, "reached": reached, **failed},
                (Step.HOLD, Outcome.FAILED, refused.failure.reason),
                refused.failure,
            )
        except Unreachable as unknown:
            raise _Interrupted(Step.HOLD, unknown.failure) from None
        held = {"hold_id": hold.hold_id, "collections": 1}
        if steps_of(order.kind).pivot_at_hold:
            return _Change({**held, **self._sold()}, (Step.HOLD, Outcome.SUCCEEDED, ""))
        return _Change({**held, "next_step": Step.COMMIT}, (Step.HOLD, Outcome.SUCCEEDED, ""))

    def _sold(self) -> dict[str, Any]:
        return {
            "status": OrderStatus.PAYMENT_PENDING,
            "next_step": Step.CAPTURE,
            "failure_reason": "",
            "failure_step": Step.NONE,
        }

    async def _commit(self, order: OrderRecord, owner: str) -> _Change:
        assert order.reservation_id is not None
        try:
            await self._peers.commit(order.reservation_id, order.request_id_of("commit"))
        except Refused as refused:
            if refused.failure.reason == "RESERVATION_ALREADY_RESOLVED":
                state = await self._reservation_state(order, Step.COMMIT)
                if state == catalogue_pb.RESERVATION_STATUS_COMMITTED:
                    return _Change(self._sold(), (Step.COMMIT, Outcome.SUCCEEDED, ""))
            # Expired or released: nothing was sold; undo the rest.
            return _Change(
                {
                    "next_step": Step.RELEASE,
                    "failure_reason": refused.failure.reason,
                    "failure_step": Step.COMMIT,
                },
                (Step.COMMIT, Outcome.FAILED, refused.failure.reason),
                refused.failure,
            )
        except Unreachable as unknown:
            raise _Interrupted(Step.COMMIT, unknown.failure) from None
        return _Change(self._sold(), (Step.COMMIT, Outcome.SUCCEEDED, ""))

    async def _reservation_state(self, order: OrderRecord, step: Step) -> int:
        assert order.reservation_id is not None
        try:
            state: int = (await self._peers.reservation(order.reservation_id)).status
        except (Refused, Unreachable) as error:
            raise _Interrupted(step, error.failure) from None
        return state

    async def _capture(self, order: OrderRecord, owner: str) -> _Change:
        assert order.hold_id is not None
        try:
            transaction_id = await self._peers.capture(
                order.hold_id,
                order.merchant_id,
                order.request_id_of(f"capture.{order.collections}"),
            )
        except Refused as refused:
            reason = refused.failure.reason
            if reason == "HOLD_ALREADY_RESOLVED":
                hold = await self._hold_state(order)
                if hold.status == wallet_pb.HOLD_STATUS_CAPTURED:
                    transaction_id = hold.capture_transaction_id
                    return self._paid(transaction_id)
            elif reason != "HOLD_EXPIRED":
                # Anything else (the merchant's wallet missing, say) may pass: the units
                # are sold, so keep trying, with backoff.
                raise _Interrupted(Step.CAPTURE, refused.failure) from None
            # The hold lapsed before it could be captured: collect another way.
            more = order.collections < self._max_collections
            return _Change(
                {
                    "next_step": Step.REHOLD if more else Step.RESTOCK,
                    "failure_reason": reason,
                    "failure_step": Step.CAPTURE,
                },
                (Step.CAPTURE, Outcome.FAILED, reason),
            )
        except Unreachable as unknown:
            raise _Interrupted(Step.CAPTURE, unknown.failure) from None
        return self._paid(transaction_id)

    def _paid(self, transaction_id: str) -> _Change:
        return _Change(
            {
                "status": OrderStatus.COMPLETED,
                "next_step": Step.NONE,
                "transaction_id": transaction_id,
                "failure_reason": "",
                "failure_step": Step.NONE,
            },
            (Step.CAPTURE, Outcome.SUCCEEDED, ""),
        )

    async def _hold_state(self, order: OrderRecord) -> wallet_pb.Hold:
        assert order.hold_id is not None
        try:
            return await self._peers.get_hold(order.hold_id)
        except (Refused, Unreachable) as error:
            raise _Interrupted(Step.CAPTURE, error.failure) from None

    async def _rehold(self, order: OrderRecord, owner: str) -> _Change:
        collection = order.collections + 1
        try:
            hold = await self._hold_call(order, collection)
        except Refused as refused:
            # The buyer cannot pay any more: return the units instead.
            return _Change(
                {
                    "next_step": Step.RESTOCK,
                    "failure_reason": refused.failure.reason,
                    "failure_step": Step.REHOLD,
                },
                (Step.REHOLD, Outcome.FAILED, refused.failure.reason),
            )
        except Unreachable as unknown:
            raise _Interrupted(Step.REHOLD, unknown.failure) from None
        return _Change(
            {"hold_id": hold.hold_id, "collections": collection, "next_step": Step.CAPTURE},
            (Step.REHOLD, Outcome.SUCCEEDED, ""),
        )

    async def _restock(self, order: OrderRecord, owner: str) -> _Change:
        if not steps_of(order.kind).returns_units:
            # A payment sold no units: with no money collected there is nothing to undo.
            return _Change({"status": OrderStatus.REVERSED, "next_step": Step.NONE}, None)
        try:
            await self._peers.restock(
                product_id=order.product_id,
                quantity=order.quantity,
                reason=f"order {order.order_id} reversed: its payment could not be collected",
                request_id=order.request_id_of("restock"),
            )
        except (Refused, Unreachable) as error:
            # The units must go back; nothing else can end the order.
            raise _Interrupted(Step.RESTOCK, error.failure) from None
        return _Change(
            {"status": OrderStatus.REVERSED, "next_step": Step.NONE},
            (Step.RESTOCK, Outcome.SUCCEEDED, ""),
        )

    # Compensation

    async def _release(self, order: OrderRecord, owner: str) -> _Change:
        done = _Change({"next_step": Step.VOID}, (Step.RELEASE, Outcome.SUCCEEDED, ""))
        if order.reached is Step.NONE:
            return _Change({"next_step": Step.VOID}, None)  # nothing was reserved
        reservation_id = order.reservation_id
        try:
            if reservation_id is None:
                # The reserve's answer was lost: its replay names the reservation.
                try:
                    reservation_id = (await self._reserve_call(order)).reservation_id
                except Refused:
                    return done  # it was refused then, or is now: nothing reserved
            await self._peers.release(reservation_id, order.request_id_of("release"))
        except Refused as refused:
            if refused.failure.reason == "RESERVATION_EXPIRED":
                return _Change(
                    {"next_step": Step.VOID, "reservation_id": reservation_id}, done.step
                )
            if refused.failure.reason != "RESERVATION_ALREADY_RESOLVED":
                raise _Interrupted(Step.RELEASE, refused.failure) from None
            with_id = replace(order, reservation_id=reservation_id)
            state = await self._reservation_state(with_id, Step.RELEASE)
            if state == catalogue_pb.RESERVATION_STATUS_COMMITTED:
                # A commit whose answer was lost went through: the sale stands.
                _log.info("order %s: its commit had gone through", order.order_id)
                return _Change(
                    {**self._sold(), "reservation_id": reservation_id},
                    (Step.COMMIT, Outcome.SUCCEEDED, ""),
                )
        except Unreachable as unknown:
            raise _Interrupted(Step.RELEASE, unknown.failure) from None
        return _Change({"next_step": Step.VOID, "reservation_id": reservation_id}, done.step)

    async def _void(self, order: OrderRecord, owner: str) -> _Change:
        cancelled = {"status": OrderStatus.CANCELLED, "next_step": Step.NONE}
        done = _Change(cancelled, (Step.VOID, Outcome.SUCCEEDED, ""))
        if order.reached not in (Step.HOLD, Step.COMMIT):
            return _Change(cancelled, None)  # no hold was asked for
        hold_id = order.hold_id
        try:
            if hold_id is None:
                try:
                    hold_id = (await self._hold_call(order, 1)).hold_id
                except Refused:
                    return done  # refused then, or now: no hold of this attempt
            await self._peers.void(hold_id, order.request_id_of("void"))
        except Refused as refused:
            if refused.failure.reason not in ("HOLD_EXPIRED", "HOLD_ALREADY_RESOLVED"):
                raise _Interrupted(Step.VOID, refused.failure) from None
        except Unreachable as unknown:
            raise _Interrupted(Step.VOID, unknown.failure) from None
        return _Change({**cancelled, "hold_id": hold_id}, done.step)
