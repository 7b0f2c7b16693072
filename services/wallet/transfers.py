"""Top-ups and user-to-user transfers: the two ways money enters or crosses wallets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlalchemy.engine import Connection
from superapp.type.v1.money_pb2 import Money
from superapp.wallet.v1 import events_pb2 as events

from services.database.prepared import Prepared
from services.eventbus import Outbox
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.proto_time import to_timestamp
from services.wallet.holds import Holds
from services.wallet.ledger import Ledger, LedgerTransaction, SystemAccount, TransactionKind
from services.wallet.models import WALLETS

__all__ = ["TopUp", "Transfers", "check_limit"]


def check_limit(limit_for: Callable[[str], int], currency_code: str, amount_minor: int) -> None:
    """FAILED_PRECONDITION `LIMIT_EXCEEDED` if the amount is above the per-transfer limit."""
    limit = limit_for(currency_code)
    if amount_minor > limit:
        raise FailedPrecondition(
            "LIMIT_EXCEEDED",
            "the amount is above the per-transfer limit",
            metadata={"currency_code": currency_code, "limit_minor": str(limit)},
        )


@dataclass(frozen=True, slots=True)
class TopUp:
    """A credit posted, and whether it was the user's first."""

    transaction: LedgerTransaction
    first: bool
    """Decided in the credit's transaction, from the wallet's row: true for exactly one
    top-up of each user, whatever the replicas and retries."""


# Changes only a wallet never topped up. On PostgreSQL a concurrent first top-up of
# the same user waits on the row and then finds it set; SQLite has one writer.
_FIRST_TOP_UP = (
    WALLETS.update()
    .where(WALLETS.c.user_id == bindparam("user"), WALLETS.c.first_top_up_time.is_(None))
    .values(first_top_up_time=bindparam("now"))
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
        self._first_top_up = Prepared(_FIRST_TOP_UP)

    def credit(
        self,
        connection: Connection,
        *,
        user_id: str,
        currency_code: str,
        amount_minor: int,
        description: str,
        request_id: str,
    ) -> TopUp:
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
        marked = self._first_top_up.execute(
            connection, {"user": user_id, "now": transaction.create_time}
        )
        return TopUp(transaction, first=marked.rowcount == 1)

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
