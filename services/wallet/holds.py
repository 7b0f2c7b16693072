"""Two-phase payments: a hold reserves funds, then resolves exactly once.

A pending hold resolves by capture (part or all of it moves to a destination wallet and
the rest is released, in one ledger transaction), by void, or by expiring. Expiry is
deterministic: from `expire_time` on, reads report the hold as expired and debits of its
account no longer count it, whether or not the sweep (`expire_due`) has recorded it yet;
the sweep then releases it and announces `HoldVoided` with reason EXPIRED.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.engine import Connection
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import events_pb2 as events

from services.auth.caller import Caller
from services.database import Database
from services.database.prepared import Prepared
from services.eventbus import Outbox
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.runtime.ids import new_id
from services.runtime.proto_time import to_timestamp
from services.wallet.ledger import Ledger, LedgerTransaction, TransactionKind
from services.wallet.models import HOLDS

__all__ = ["SWEEP_BATCH", "HoldRecord", "HoldStatus", "Holds"]

SWEEP_BATCH = 500
"""Holds expired per sweep transaction at most."""


class HoldStatus(enum.StrEnum):
    """A hold's state as stored."""

    PENDING = "pending"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """A hold as stored, with its status as of the moment it was read."""

    hold_id: str
    user_id: str
    currency_code: str
    amount_minor: int
    status: HoldStatus
    description: str
    create_time: datetime
    expire_time: datetime
    resolve_time: datetime | None
    to_user_id: str | None
    captured_minor: int | None
    capture_transaction_id: str | None

    def as_of(self, now: datetime) -> HoldRecord:
        """The hold as a reader at `now` sees it: pending past its expiry reads expired."""
        if self.status is HoldStatus.PENDING and now >= self.expire_time:
            return replace(self, status=HoldStatus.EXPIRED, resolve_time=self.expire_time)
        return self


def _record(row: Row[Any]) -> HoldRecord:
    return HoldRecord(
        hold_id=row.hold_id,
        user_id=row.user_id,
        currency_code=row.currency_code,
        amount_minor=row.amount_minor,
        status=HoldStatus(row.status),
        description=row.description,
        create_time=row.create_time,
        expire_time=row.expire_time,
        resolve_time=row.resolve_time,
        to_user_id=row.to_user_id,
        captured_minor=row.captured_minor,
        capture_transaction_id=row.capture_transaction_id,
    )


def _not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "no such hold", metadata={"hold_id": hold_id})


_STATUS_NAMES = {
    HoldStatus.PENDING: "HOLD_STATUS_PENDING",
    HoldStatus.CAPTURED: "HOLD_STATUS_CAPTURED",
    HoldStatus.VOIDED: "HOLD_STATUS_VOIDED",
    HoldStatus.EXPIRED: "HOLD_STATUS_EXPIRED",
}


class Holds:
    """Creates, resolves, reads and expires holds."""

    def __init__(
        self,
        database: Database,
        ledger: Ledger,
        outbox: Outbox,
        clock: Clock,
        check_limit: Callable[[str, int], None],
    ) -> None:
        self._database = database
        self._ledger = ledger
        self._outbox = outbox
        self._clock = clock
        self._check_limit = check_limit
        self._insert = HOLDS.insert()
        by_id = HOLDS.c.hold_id == bindparam("hold_id")
        self._by_id = select(HOLDS).where(by_id)
        # PostgreSQL: capture and void of one hold queue on its row; SQLite ignores it.
        self._by_id_locked = self._by_id.with_for_update()
        self._resolve = (
            HOLDS.update()
            .where(
                (HOLDS.c.hold_id == bindparam("resolved_hold"))
                & (HOLDS.c.status == HoldStatus.PENDING.value)
            )
            .values(
                status=bindparam("status"),
                resolve_time=bindparam("resolve_time"),
                to_user_id=bindparam("to_user_id"),
                captured_minor=bindparam("captured_minor"),
                capture_transaction_id=bindparam("capture_transaction_id"),
            )
        )
        due = (HOLDS.c.status == HoldStatus.PENDING.value) & (
            HOLDS.c.expire_time <= bindparam("now")
        )
        # Claimed: the sweeps of several replicas take disjoint holds, and a hold being
        # captured or voided right now is left to that call (it finds it expired). Without
        # the lock two replicas released the same hold twice.
        self._due = (
            select(HOLDS)
            .where(due)
            .order_by(HOLDS.c.expire_time)
            .limit(SWEEP_BATCH)
            .with_for_update(skip_locked=True)
        )
        of_user = due & (HOLDS.c.user_id == bindparam("user_id"))
        self._due_of_user = select(HOLDS).where(of_user).with_for_update()
        # Every debit asks; almost always the answer is no, so ask cheaply first.
        self._any_due_of_user = Prepared(select(HOLDS.c.hold_id).where(of_user).limit(1))

    def create(
        self,
        connection: Connection,
        *,
        user_id: str,
        currency_code: str,
        amount_minor: int,
        ttl: timedelta,
        description: str,
    ) -> HoldRecord:
        """Reserve available funds until `now + ttl`; announces `HoldCreated`."""
        self._check_limit(currency_code, amount_minor)
        self._ledger.require_wallets(connection, user_id)
        now = self._clock.now()
        self.expire_due(connection, now, user_id=user_id)
        self._ledger.reserve(connection, user_id, currency_code, amount_minor)
        hold = HoldRecord(
            hold_id=new_id(),
            user_id=user_id,
            currency_code=currency_code,
            amount_minor=amount_minor,
            status=HoldStatus.PENDING,
            description=description,
            create_time=now,
            expire_time=now + ttl,
            resolve_time=None,
            to_user_id=None,
            captured_minor=None,
            capture_transaction_id=None,
        )
        connection.execute(
            self._insert,
            {
                "hold_id": hold.hold_id,
                "user_id": user_id,
                "currency_code": currency_code,
                "amount_minor": amount_minor,
                "status": hold.status.value,
                "description": description,
                "create_time": now,
                "expire_time": hold.expire_time,
            },
        )
        created = events.HoldCreated(
            hold_id=hold.hold_id,
            user_id=user_id,
            amount=Money(currency_code=currency_code, amount_minor=amount_minor),
            expire_time=to_timestamp(hold.expire_time),
            occur_time=to_timestamp(now),
        )
        self._outbox.record_sync(connection, created, aggregate_id=hold.hold_id)
        return hold

    def capture(
        self,
        connection: Connection,
        *,
        caller: Caller,
        hold_id: str,
        to_user_id: str,
        amount: tuple[str, int] | None,
        request_id: str,
    ) -> tuple[HoldRecord, LedgerTransaction]:
        """Move `amount` (default: all) of a pending hold to `to_user_id`, release the rest."""
        now = self._clock.now()
        hold = self._pending(connection, caller, hold_id, now)
        if to_user_id == hold.user_id:
            raise InvalidArgument(
                [FieldViolation("to_user_id", "must not be the hold's owner", "SELF_TRANSFER")],
                reason="SELF_TRANSFER",
            )
        captured = hold.amount_minor
        if amount is not None:
            currency_code, captured = amount
            if currency_code != hold.currency_code:
                raise FailedPrecondition(
                    "CURRENCY_MISMATCH",
                    "the amount is not in the hold's currency",
                    metadata={"currency_code": hold.currency_code},
                )
            if captured > hold.amount_minor:
                raise FailedPrecondition(
                    "CAPTURE_EXCEEDS_HOLD",
                    "the amount is larger than the hold",
                    metadata={"held_minor": str(hold.amount_minor)},
                )
        self._ledger.require_wallets(connection, to_user_id)
        self._ledger.release(connection, hold.user_id, hold.currency_code, hold.amount_minor)
        transaction = self._ledger.post(
            connection,
            kind=TransactionKind.HOLD_CAPTURE,
            debit=hold.user_id,
            credit=to_user_id,
            currency_code=hold.currency_code,
            amount_minor=captured,
            description=hold.description,
            request_id=request_id,
            now=now,
            hold_id=hold.hold_id,
        )
        resolved = replace(
            hold,
            status=HoldStatus.CAPTURED,
            resolve_time=now,
            to_user_id=to_user_id,
            captured_minor=captured,
            capture_transaction_id=transaction.transaction_id,
        )
        self._store_resolution(connection, resolved)
        captured_event = events.HoldCaptured(
            hold_id=hold.hold_id,
            user_id=hold.user_id,
            captured_amount=Money(currency_code=hold.currency_code, amount_minor=captured),
            to_user_id=to_user_id,
            transaction_id=transaction.transaction_id,
            occur_time=to_timestamp(now),
        )
        self._outbox.record_sync(connection, captured_event, aggregate_id=hold.hold_id)
        return resolved, transaction

    def void(self, connection: Connection, *, caller: Caller, hold_id: str) -> HoldRecord:
        """Release all of a pending hold; announces `HoldVoided` (REQUESTED)."""
        now = self._clock.now()
        hold = self._pending(connection, caller, hold_id, now)
        resolved = replace(hold, status=HoldStatus.VOIDED, resolve_time=now)
        self._release(connection, resolved, events.HOLD_VOID_REASON_REQUESTED, now)
        return resolved

    def expire_due(self, connection: Connection, now: datetime, *, user_id: str | None) -> int:
        """Record the expiry of pending holds due at `now` (of one user, or the oldest
        batch of all); returns how many."""
        if user_id is None:
            rows = connection.execute(self._due, {"now": now}).all()
        else:
            parameters = {"now": now, "user_id": user_id}
            if self._any_due_of_user.first(connection, parameters) is None:
                return 0
            rows = connection.execute(self._due_of_user, parameters).all()
        for row in rows:
            hold = _record(row)
            expired = replace(hold, status=HoldStatus.EXPIRED, resolve_time=hold.expire_time)
            self._release(connection, expired, events.HOLD_VOID_REASON_EXPIRED, now)
        return len(rows)

    async def get(self, caller: Caller, hold_id: str) -> HoldRecord:
        """One hold as of now, to its owner, an admin or the system."""
        rows = await self._database.lookup(self._by_id, {"hold_id": hold_id})
        if not rows:
            raise _not_found(hold_id)
        hold = _record(rows[0])
        caller.check_may_act_for(hold.user_id, system=True)
        return hold.as_of(self._clock.now())

    def _pending(
        self, connection: Connection, caller: Caller, hold_id: str, now: datetime
    ) -> HoldRecord:
        row = connection.execute(self._by_id_locked, {"hold_id": hold_id}).first()
        if row is None:
            raise _not_found(hold_id)
        hold = _record(row)
        caller.check_may_act_for(hold.user_id, system=True)
        hold = hold.as_of(now)
        if hold.status is HoldStatus.EXPIRED:
            raise FailedPrecondition(
                "HOLD_EXPIRED",
                "the hold has expired and its funds were released",
                metadata={"hold_id": hold_id, "expire_time": hold.expire_time.isoformat()},
            )
        if hold.status is not HoldStatus.PENDING:
            raise FailedPrecondition(
                "HOLD_ALREADY_RESOLVED",
                "the hold was already resolved",
                metadata={"hold_id": hold_id, "status": _STATUS_NAMES[hold.status]},
            )
        return hold

    def _release(
        self,
        connection: Connection,
        resolved: HoldRecord,
        reason: events.HoldVoidReason.ValueType,
        now: datetime,
    ) -> None:
        self._ledger.release(
            connection, resolved.user_id, resolved.currency_code, resolved.amount_minor
        )
        self._store_resolution(connection, resolved)
        voided = events.HoldVoided(
            hold_id=resolved.hold_id,
            user_id=resolved.user_id,
            amount=Money(currency_code=resolved.currency_code, amount_minor=resolved.amount_minor),
            reason=reason,
            occur_time=to_timestamp(now),
        )
        self._outbox.record_sync(connection, voided, aggregate_id=resolved.hold_id)

    def _store_resolution(self, connection: Connection, resolved: HoldRecord) -> None:
        changed = connection.execute(
            self._resolve,
            {
                "resolved_hold": resolved.hold_id,
                "status": resolved.status.value,
                "resolve_time": resolved.resolve_time,
                "to_user_id": resolved.to_user_id,
                "captured_minor": resolved.captured_minor,
                "capture_transaction_id": resolved.capture_transaction_id,
            },
        ).rowcount
        if changed != 1:  # the row was locked and checked pending in this transaction
            raise RuntimeError(f"hold {resolved.hold_id} was resolved twice")
