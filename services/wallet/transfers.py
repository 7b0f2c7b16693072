"""Top-ups and user-to-user transfers: the two ways money enters or crosses wallets."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Connection
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import events_pb2 as events

from services.eventbus import Outbox
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.proto_time import to_timestamp
from services.wallet.holds import Holds
from services.wallet.ledger import Ledger, LedgerTransaction, SystemAccount, TransactionKind

__all__ = ["Transfers", "check_limit"]


def check_limit(limit_for: Callable[[str], int], currency_code: str, amount_minor: int) -> None:
    """FAILED_PRECONDITION `LIMIT_EXCEEDED` if the amount is above the per-transfer limit."""
    limit = limit_for(currency_code)
    if amount_minor > limit:
        raise FailedPrecondition(
            "LIMIT_EXCEEDED",
            "the amount is above the per-transfer limit",
            metadata={"currency_code": currency_code, "limit_minor": str(limit)},
        )


class Transfers:
    """Credits from the funding account and transfers between users."""

    def __init__(
        self,
        ledger: Ledger,
        holds: Holds,
        outbox: Outbox,
        clock: Clock,
        limit_for: Callable[[str], int],
    ) -> None:
        self._ledger = ledger
        self._holds = holds
        self._outbox = outbox
        self._clock = clock
        self._limit_for = limit_for

    def credit(
        self,
        connection: Connection,
        *,
        user_id: str,
        currency_code: str,
        amount_minor: int,
        description: str,
        request_id: str,
    ) -> LedgerTransaction:
        """Top up `user_id` from the funding account; announces `FundsCredited`."""
        self._ledger.require_wallets(connection, user_id)
        transaction = self._ledger.post(
            connection,
            kind=TransactionKind.CREDIT,
            debit=SystemAccount.FUNDING,
            credit=user_id,
            currency_code=currency_code,
            amount_minor=amount_minor,
            description=description,
            request_id=request_id,
            now=self._clock.now(),
        )
        credited = events.FundsCredited(
            transaction_id=transaction.transaction_id,
            user_id=user_id,
            amount=Money(currency_code=currency_code, amount_minor=amount_minor),
            occur_time=to_timestamp(transaction.create_time),
        )
        self._outbox.record_sync(connection, credited, aggregate_id=transaction.transaction_id)
        return transaction

    def transfer(
        self,
        connection: Connection,
        *,
        from_user_id: str,
        to_user_id: str,
        currency_code: str,
        amount_minor: int,
        description: str,
        request_id: str,
    ) -> LedgerTransaction:
        """Move money between two users' wallets; announces `FundsTransferred`."""
        check_limit(self._limit_for, currency_code, amount_minor)
        self._ledger.require_wallets(connection, from_user_id, to_user_id)
        now = self._clock.now()
        # Holds past their expiry no longer reserve anything, swept or not yet.
        self._holds.expire_due(connection, now, user_id=from_user_id)
        transaction = self._ledger.post(
            connection,
            kind=TransactionKind.TRANSFER,
            debit=from_user_id,
            credit=to_user_id,
            currency_code=currency_code,
            amount_minor=amount_minor,
            description=description,
            request_id=request_id,
            now=now,
        )
        transferred = events.FundsTransferred(
            transaction_id=transaction.transaction_id,
            from_user_id=from_user_id,
            to_user_id=to_user_id,
            amount=Money(currency_code=currency_code, amount_minor=amount_minor),
            occur_time=to_timestamp(now),
        )
        self._outbox.record_sync(connection, transferred, aggregate_id=transaction.transaction_id)
        return transaction
