"""Payment requests: a mini-app asks, the user confirms, the outcome is announced.

A mini-app's backend, holding a token with `wallet.pay`, creates a request (amount,
description, its merchant account, its own idempotency key) for the user the token
stands for; identity resolves the token's pairwise subject to the user, and only this
service keeps that user id. Nothing moves at creation. The user confirms with their
own token: only the user the request was made for may (anyone else is told the request
does not exist, so requests cannot be probed), and only once, before it expires; a
replayed confirmation answers the request as it stands and changes nothing. The money
path then records the outcome with `settle` (SUCCEEDED with its order, or FAILED with a
reason), once. Each change writes its webhook event in the same transaction, with an
event id derived from the request and the change, so a replayed change announces
nothing twice.

    AWAITING_CONFIRMATION → CONFIRMED → SUCCEEDED / FAILED
    AWAITING_CONFIRMATION → EXPIRED   (confirmed too late, or swept by `expire_due`)
    AWAITING_CONFIRMATION → DECLINED  (the user said no)

A suspended mini-app (the kill switch) can neither create requests nor have its
waiting ones confirmed: MINI_APP_SUSPENDED, checked in the transaction that would
change the request, so a suspension that committed first always wins.

A CONFIRMED request is due for the settler (`next_settle_time`) from the moment it is
confirmed plus a grace for the confirming call's own attempt at paying (`settle_grace`):
if that process dies mid-payment, any replica's settler finishes it.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.database.engine import Database
from services.database.insert_if_absent import insert_if_absent
from services.miniapps.models import MINI_APPS, PAYMENT_REQUESTS
from services.miniapps.records import AppStatus
from services.miniapps.webhooks import Webhooks
from services.runtime.clock import Clock
from services.runtime.contract_rules import currency_codes, id_violation
from services.runtime.errors import FailedPrecondition, FieldViolation, NotFound
from services.runtime.ids import new_id
from services.runtime.validation import RequestCheck

__all__ = [
    "FINAL_STATES",
    "NewPaymentRequest",
    "PaymentRequestRecord",
    "PaymentRequestState",
    "PaymentRequests",
]

_P, _A = PAYMENT_REQUESTS.c, MINI_APPS.c
_DESCRIPTION_MAX = 200
# The event ids of one request's changes: the same change always has the same id.
_EVENT_NAMESPACE = uuid.UUID("6f1d7c1e-4b7a-4d35-9a51-2f0f1f3b7a10")


class PaymentRequestState(enum.StrEnum):
    """A request's `state` column."""

    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
    CONFIRMED = "CONFIRMED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    DECLINED = "DECLINED"


FINAL_STATES = frozenset(
    {
        PaymentRequestState.SUCCEEDED,
        PaymentRequestState.FAILED,
        PaymentRequestState.EXPIRED,
        PaymentRequestState.DECLINED,
    }
)


@dataclass(frozen=True, slots=True)
class NewPaymentRequest:
    """What a mini-app asks, for the user its token stands for."""

    mini_app_id: str
    user_id: str
    subject: str
    merchant_id: str
    currency_code: str
    amount_minor: int
    description: str
    idempotency_key: str

    @property
    def fingerprint(self) -> str:
        """A digest of what a retry under the same key must repeat."""
        asked = "\n".join(
            (
                self.user_id,
                self.merchant_id,
                self.currency_code,
                str(self.amount_minor),
                self.description,
            )
        )
        return hashlib.sha256(asked.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PaymentRequestRecord:
    """A payment request as stored."""

    payment_request_id: str
    mini_app_id: str
    user_id: str
    subject: str
    merchant_id: str
    currency_code: str
    amount_minor: int
    description: str
    idempotency_key: str
    state: PaymentRequestState
    order_id: str | None
    failure_reason: str
    expire_time: datetime
    confirm_time: datetime | None
    create_time: datetime
    update_time: datetime
    settle_attempts: int = 0


def _record(row: Any) -> PaymentRequestRecord:
    return PaymentRequestRecord(
        payment_request_id=row.payment_request_id,
        mini_app_id=row.mini_app_id,
        user_id=row.user_id,
        subject=row.subject,
        merchant_id=row.merchant_id,
        currency_code=row.currency_code,
        amount_minor=row.amount_minor,
        description=row.description,
        idempotency_key=row.idempotency_key,
        state=PaymentRequestState(row.state),
        order_id=row.order_id,
        failure_reason=row.failure_reason,
        expire_time=row.expire_time,
        confirm_time=row.confirm_time,
        create_time=row.create_time,
        update_time=row.update_time,
        settle_attempts=row.settle_attempts,
    )


def _not_found(payment_request_id: str) -> NotFound:
    return NotFound(
        "PAYMENT_REQUEST_NOT_FOUND",
        "no such payment request",
        metadata={"payment_request_id": payment_request_id},
    )


def _suspended(mini_app_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "MINI_APP_SUSPENDED",
        "the mini-app is suspended: it cannot ask for payments, nor be paid",
        metadata={"mini_app_id": mini_app_id},
    )


async def _require_active(session: AsyncSession, mini_app_id: str) -> None:
    status = await session.scalar(select(_A.status).where(_A.mini_app_id == mini_app_id))
    if status != AppStatus.ACTIVE.value:
        raise _suspended(mini_app_id)


def _expired(payment_request_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "PAYMENT_REQUEST_EXPIRED",
        "the payment request waited too long for confirmation; the mini-app must ask again",
        metadata={"payment_request_id": payment_request_id},
    )


def _declined(payment_request_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "PAYMENT_REQUEST_DECLINED",
        "the user declined this payment request; the mini-app must ask again",
        metadata={"payment_request_id": payment_request_id},
    )


def _event_id(payment_request_id: str, change: str) -> str:
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{payment_request_id}/{change}"))


def _announced(record: PaymentRequestRecord) -> dict[str, Any]:
    """A request as its webhook events show it: never the user's real id."""
    return {
        "payment_request_id": record.payment_request_id,
        "subject": record.subject,
        "state": record.state.value,
        "currency_code": record.currency_code,
        "amount_minor": record.amount_minor,
        "description": record.description,
        "idempotency_key": record.idempotency_key,
        "order_id": record.order_id or "",
        "failure_reason": record.failure_reason,
    }


_MONEY_LIMIT = 10**15
_IDEMPOTENCY_KEY_MAX = 128


def _violations(asked: NewPaymentRequest) -> list[FieldViolation]:
    """What is wrong with a request's own fields. It reaches miniapps through no RPC yet
    (that comes with the money path), so no contract rule checks it: these say what the
    wallet's rules say of the same fields, with the same reasons."""
    found: list[FieldViolation] = []
    if asked.currency_code not in currency_codes():
        found.append(
            FieldViolation(
                "amount.currency_code",
                "must be a current ISO 4217 code such as USD",
                "INVALID_CURRENCY",
            )
        )
    if not 0 < asked.amount_minor < _MONEY_LIMIT:
        found.append(
            FieldViolation(
                "amount.amount_minor", f"must be positive and below {_MONEY_LIMIT}", "OUT_OF_RANGE"
            )
        )
    if not asked.description.strip():
        found.append(FieldViolation("description", "is required", "REQUIRED"))
    elif len(asked.description) > _DESCRIPTION_MAX:
        found.append(
            FieldViolation(
                "description", f"must be at most {_DESCRIPTION_MAX} characters", "TOO_LONG"
            )
        )
    key = asked.idempotency_key
    if not key:
        found.append(FieldViolation("idempotency_key", "is required", "REQUIRED"))
    elif len(key) > _IDEMPOTENCY_KEY_MAX or not key.isprintable():
        found.append(
            FieldViolation(
                "idempotency_key",
                f"must be 1 to {_IDEMPOTENCY_KEY_MAX} printable characters",
                "MALFORMED_ID",
            )
        )
    if (bad_merchant := id_violation("merchant_id", asked.merchant_id)) is not None:
        found.append(bad_merchant)
    return found


class PaymentRequests:
    """Creates, confirms, settles and reads payment requests; see the module's docstring."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        webhooks: Webhooks,
        *,
        ttl: timedelta,
        settle_grace: timedelta = timedelta(seconds=60),
    ) -> None:
        """`ttl`: how long a request waits for the user's confirmation; `settle_grace`:
        how long the confirming call has to pay before the settler may take over."""
        self._database = database
        self._clock = clock
        self._webhooks = webhooks
        self._ttl = ttl
        self._settle_grace = settle_grace

    async def mini_app_of_client(self, client_id: str) -> str:
        """The id of the mini-app whose OAuth client is `client_id`, if it is ACTIVE;
        FAILED_PRECONDITION `MINI_APP_SUSPENDED` else (identity vouched for the client,
        so a missing one was removed or suspended since)."""
        async with self._database.read() as session:
            row = (
                await session.execute(
                    select(_A.mini_app_id, _A.status).where(_A.client_id == client_id)
                )
            ).first()
        if row is None or row.status != AppStatus.ACTIVE.value:
            raise _suspended(row.mini_app_id if row is not None else "")
        return str(row.mini_app_id)

    async def create(self, asked: NewPaymentRequest) -> PaymentRequestRecord:
        """The request made under (mini-app, idempotency key): new, or the one a retry
        with the same parameters made before; other parameters are IDEMPOTENCY_KEY_REUSED."""
        check = RequestCheck(_violations(asked))
        if asked.merchant_id == asked.user_id:
            check.fail("merchant_id", "a user cannot pay their own merchant account")
        check.done()
        now = self._clock.now()
        async with self._database.write() as session:
            await _require_active(session, asked.mini_app_id)
            await session.execute(
                insert_if_absent(self._database, PAYMENT_REQUESTS).values(
                    payment_request_id=new_id(),
                    mini_app_id=asked.mini_app_id,
                    user_id=asked.user_id,
                    subject=asked.subject,
                    merchant_id=asked.merchant_id,
                    currency_code=asked.currency_code,
                    amount_minor=asked.amount_minor,
                    description=asked.description,
                    idempotency_key=asked.idempotency_key,
                    fingerprint=asked.fingerprint,
                    state=PaymentRequestState.AWAITING_CONFIRMATION.value,
                    order_id=None,
                    failure_reason="",
                    expire_time=now + self._ttl,
                    confirm_time=None,
                    create_time=now,
                    update_time=now,
                )
            )
            row = (
                await session.execute(
                    select(PAYMENT_REQUESTS).where(
                        _P.mini_app_id == asked.mini_app_id,
                        _P.idempotency_key == asked.idempotency_key,
                    )
                )
            ).one()
        if row.fingerprint != asked.fingerprint:
            raise FailedPrecondition(
                "IDEMPOTENCY_KEY_REUSED",
                "idempotency_key was already used for a payment request with other parameters",
                metadata={
                    "idempotency_key": asked.idempotency_key,
                    "payment_request_id": row.payment_request_id,
                },
            )
        return _record(row)

    async def for_mini_app(self, mini_app_id: str, payment_request_id: str) -> PaymentRequestRecord:
        """One of the mini-app's requests; another mini-app's is PAYMENT_REQUEST_NOT_FOUND."""
        async with self._database.read() as session:
            found = await self._get(session, payment_request_id)
        if found is None or found.mini_app_id != mini_app_id:
            raise _not_found(payment_request_id)
        return found

    async def for_user(self, user_id: str, payment_request_id: str) -> PaymentRequestRecord:
        """One of the user's requests; another user's is PAYMENT_REQUEST_NOT_FOUND."""
        async with self._database.read() as session:
            found = await self._get(session, payment_request_id)
        if found is None or found.user_id != user_id:
            raise _not_found(payment_request_id)
        return found

    async def confirm(self, user_id: str, payment_request_id: str) -> PaymentRequestRecord:
        """The user's confirmation: AWAITING_CONFIRMATION → CONFIRMED, once. Replays get
        the request as it stands; a request that waited too long becomes EXPIRED and is
        PAYMENT_REQUEST_EXPIRED; a declined one is PAYMENT_REQUEST_DECLINED; another
        user's is PAYMENT_REQUEST_NOT_FOUND; a suspended mini-app's is
        MINI_APP_SUSPENDED and stays as it was."""
        now = self._clock.now()
        async with self._database.write() as session:
            found = await self._get(session, payment_request_id, lock=True)
            if found is None or found.user_id != user_id:
                raise _not_found(payment_request_id)
            if found.state is PaymentRequestState.DECLINED:
                raise _declined(payment_request_id)
            if found.state is not PaymentRequestState.AWAITING_CONFIRMATION:
                if found.state is not PaymentRequestState.EXPIRED:
                    return found  # a replay: the first confirmation's effect stands
            elif found.expire_time <= now:
                found = await self._move(session, found, PaymentRequestState.EXPIRED, now)
            else:
                await _require_active(session, found.mini_app_id)
                return await self._move(
                    session,
                    found,
                    PaymentRequestState.CONFIRMED,
                    now,
                    confirm_time=now,
                    next_settle_time=now + self._settle_grace,
                )
        raise _expired(payment_request_id)

    async def decline(self, user_id: str, payment_request_id: str) -> PaymentRequestRecord:
        """The user's refusal: AWAITING_CONFIRMATION → DECLINED, once; a replay gets the
        request as it stands. A confirmed request is PAYMENT_REQUEST_ALREADY_CONFIRMED (its
        payment stands); an expired one PAYMENT_REQUEST_EXPIRED; another user's
        PAYMENT_REQUEST_NOT_FOUND. A suspended mini-app's request may still be declined."""
        now = self._clock.now()
        async with self._database.write() as session:
            found = await self._get(session, payment_request_id, lock=True)
            if found is None or found.user_id != user_id:
                raise _not_found(payment_request_id)
            if found.state is PaymentRequestState.DECLINED:
                return found
            if found.state is PaymentRequestState.AWAITING_CONFIRMATION:
                if found.expire_time > now:
                    return await self._move(session, found, PaymentRequestState.DECLINED, now)
                found = await self._move(session, found, PaymentRequestState.EXPIRED, now)
            if found.state is not PaymentRequestState.EXPIRED:
                raise FailedPrecondition(
                    "PAYMENT_REQUEST_ALREADY_CONFIRMED",
                    "the user confirmed this payment request before; it cannot be declined",
                    metadata={"payment_request_id": payment_request_id, "state": found.state},
                )
        raise _expired(payment_request_id)

    async def expire_due(self, *, limit: int = 100) -> int:
        """Move up to `limit` requests whose confirmation window has passed to EXPIRED,
        announcing each; how many moved. Any replica may run it: each row is moved under
        its lock, and one already moved is skipped."""
        now = self._clock.now()
        async with self._database.read() as session:
            due = (
                await session.scalars(
                    select(_P.payment_request_id)
                    .where(
                        _P.state == PaymentRequestState.AWAITING_CONFIRMATION.value,
                        _P.expire_time <= now,
                    )
                    .order_by(_P.expire_time)
                    .limit(limit)
                )
            ).all()
        moved = 0
        for payment_request_id in due:
            async with self._database.write() as session:
                found = await self._get(session, payment_request_id, lock=True)
                if found is not None and found.state is PaymentRequestState.AWAITING_CONFIRMATION:
                    await self._move(session, found, PaymentRequestState.EXPIRED, now)
                    moved += 1
        return moved

    async def postpone(self, payment_request_id: str, until: datetime, attempts: int) -> None:
        """Make a CONFIRMED request due for the settler again at `until` (its order is not
        final yet), recording `attempts`; a settled request is left as it is."""
        async with self._database.write() as session:
            await session.execute(
                PAYMENT_REQUESTS.update()
                .where(
                    _P.payment_request_id == payment_request_id,
                    _P.state == PaymentRequestState.CONFIRMED.value,
                )
                .values(
                    next_settle_time=until,
                    settle_attempts=attempts,
                    settle_holder=None,
                    settle_lease_expire_time=None,
                )
            )

    async def claim_due(self, holder: str, lease: timedelta) -> PaymentRequestRecord | None:
        """One CONFIRMED request due for settling, claimed by `holder` until the lease
        lapses (SKIP LOCKED, so replicas share the work); None when none is due."""
        now = self._clock.now()
        due = (
            select(_P.payment_request_id)
            .where(
                _P.state == PaymentRequestState.CONFIRMED.value,
                _P.next_settle_time <= now,
                or_(_P.settle_lease_expire_time.is_(None), _P.settle_lease_expire_time < now),
            )
            .order_by(_P.next_settle_time, _P.payment_request_id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        async with self._database.write() as session:
            payment_request_id = await session.scalar(due)
            if payment_request_id is None:
                return None
            await session.execute(
                PAYMENT_REQUESTS.update()
                .where(_P.payment_request_id == payment_request_id)
                .values(settle_holder=holder, settle_lease_expire_time=now + lease)
            )
            return await self._get(session, payment_request_id)

    async def settle(
        self,
        payment_request_id: str,
        *,
        order_id: str | None,
        failure_reason: str = "",
    ) -> PaymentRequestRecord:
        """Record a CONFIRMED request's outcome once: SUCCEEDED with its order when
        `failure_reason` is empty, else FAILED. A settled request is returned as it is;
        one never confirmed cannot be settled (no money moves without confirmation)."""
        now = self._clock.now()
        async with self._database.write() as session:
            found = await self._get(session, payment_request_id, lock=True)
            if found is None:
                raise _not_found(payment_request_id)
            if found.state in (PaymentRequestState.SUCCEEDED, PaymentRequestState.FAILED):
                return found
            if found.state is not PaymentRequestState.CONFIRMED:
                raise FailedPrecondition(
                    "PAYMENT_REQUEST_NOT_CONFIRMED",
                    "the user has not confirmed this payment request",
                    metadata={"payment_request_id": payment_request_id},
                )
            state = PaymentRequestState.FAILED if failure_reason else PaymentRequestState.SUCCEEDED
            return await self._move(
                session,
                found,
                state,
                now,
                order_id=order_id,
                failure_reason=failure_reason[:64],
                next_settle_time=None,
                settle_holder=None,
                settle_lease_expire_time=None,
            )

    async def _get(
        self, session: AsyncSession, payment_request_id: str, *, lock: bool = False
    ) -> PaymentRequestRecord | None:
        query = select(PAYMENT_REQUESTS).where(_P.payment_request_id == payment_request_id)
        if lock:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        return None if row is None else _record(row)

    async def _move(
        self,
        session: AsyncSession,
        found: PaymentRequestRecord,
        state: PaymentRequestState,
        now: datetime,
        **changes: Any,
    ) -> PaymentRequestRecord:
        await session.execute(
            PAYMENT_REQUESTS.update()
            .where(_P.payment_request_id == found.payment_request_id)
            .values(state=state.value, update_time=now, **changes)
        )
        moved = await self._get(session, found.payment_request_id)
        assert moved is not None
        change = state.value.lower()
        await self._webhooks.enqueue(
            session,
            moved.mini_app_id,
            f"payment_request.{change}",
            _announced(moved),
            event_id=_event_id(moved.payment_request_id, change),
        )
        return moved
