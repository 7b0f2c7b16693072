"""The double-entry core: accounts, balanced transactions and reservations.

Every function here runs inside a write transaction on a synchronous connection (see
`BatchWriter`), one after another, so they are written as plain blocking calls with
statements built once. Money only moves in transactions whose postings sum to zero;
user accounts are debited with a conditional UPDATE (`posted - held >= amount`), which
is both the overdraft check and, on PostgreSQL, the row lock that serialises writers
of one account; the `never_overdrawn` CHECK constraint backs it up.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.database.prepared import Prepared
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.ids import new_id
from services.wallet.models import ACCOUNTS, POSTINGS, TRANSACTIONS, WALLETS

__all__ = [
    "BALANCE_LIMIT",
    "Ledger",
    "LedgerTransaction",
    "Posting",
    "SystemAccount",
    "TransactionKind",
    "counterparty",
    "is_system",
    "net_for",
]


BALANCE_LIMIT = 2**62
"""The largest balance, either way, an account may reach. Every amount is below 10^15
(see `RequestCheck.positive_amount`), so a balance within this bound plus one more
amount still fits the 64-bit columns: the check runs before anything could overflow
(PostgreSQL would fail the statement; SQLite would quietly turn the sum into a float)."""


class SystemAccount(enum.StrEnum):
    """The platform's own accounts; their owner strings can never collide with a UUID."""

    FUNDING = "system:funding"
    SETTLEMENT = "system:settlement"
    MERCHANT_PAYOUTS = "system:merchant_payouts"


class TransactionKind(enum.StrEnum):
    """What created a transaction."""

    CREDIT = "credit"
    TRANSFER = "transfer"
    HOLD_CAPTURE = "hold_capture"


@dataclass(frozen=True, slots=True)
class Posting:
    """One leg: a signed amount on the account of `owner` (a user id or a SystemAccount)."""

    owner: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class LedgerTransaction:
    """An immutable, balanced transaction."""

    transaction_id: str
    kind: TransactionKind
    currency_code: str
    postings: tuple[Posting, ...]
    description: str
    request_id: str
    hold_id: str | None
    create_time: datetime


def _upsert(dialect: str) -> Insert:
    """Add `delta` to an account's posted balance, opening the account if it is new."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ACCOUNTS).values(
        owner=bindparam("account_owner"),
        currency_code=bindparam("account_currency"),
        system=bindparam("system"),
        posted_minor=bindparam("delta"),
        held_minor=0,
        create_time=bindparam("now"),
    )
    return statement.on_conflict_do_update(
        index_elements=[ACCOUNTS.c.owner, ACCOUNTS.c.currency_code],
        set_={"posted_minor": ACCOUNTS.c.posted_minor + statement.excluded.posted_minor},
    ).returning(ACCOUNTS.c.posted_minor)


_ACCOUNT = (ACCOUNTS.c.owner == bindparam("account_owner")) & (
    ACCOUNTS.c.currency_code == bindparam("account_currency")
)
_AVAILABLE = ACCOUNTS.c.posted_minor - ACCOUNTS.c.held_minor


class Ledger:
    """Accounts and transactions; `dialect` picks the upsert flavour.

    Every statement of a transfer is `Prepared`: the write path runs ten of them per
    transfer, where SQLAlchemy's per-execution overhead would dominate.
    """

    def __init__(self, dialect: str) -> None:
        self._credit = Prepared(_upsert(dialect))
        self._debit_user = Prepared(
            ACCOUNTS.update()
            .where(_ACCOUNT & (bindparam("amount") <= _AVAILABLE))
            .values(posted_minor=ACCOUNTS.c.posted_minor - bindparam("amount"))
        )
        self._reserve = Prepared(
            ACCOUNTS.update()
            .where(_ACCOUNT & (bindparam("amount") <= _AVAILABLE))
            .values(held_minor=ACCOUNTS.c.held_minor + bindparam("amount"))
        )
        self._release = Prepared(
            ACCOUNTS.update()
            .where(_ACCOUNT & (ACCOUNTS.c.held_minor >= bindparam("amount")))
            .values(held_minor=ACCOUNTS.c.held_minor - bindparam("amount"))
        )
        self._available = Prepared(select(_AVAILABLE).where(_ACCOUNT))
        self._wallets = {
            count: Prepared(
                select(WALLETS.c.user_id).where(
                    WALLETS.c.user_id.in_([bindparam(f"user_{i}") for i in range(count)])
                )
            )
            for count in (1, 2)
        }
        self._insert_transaction = Prepared(
            TRANSACTIONS.insert().returning(TRANSACTIONS.c.seq),
            [column.key for column in TRANSACTIONS.c if column.key != "seq"],
        )
        self._insert_postings = Prepared(POSTINGS.insert(), [column.key for column in POSTINGS.c])

    def require_wallets(self, connection: Connection, *user_ids: str) -> None:
        """NOT_FOUND `WALLET_NOT_FOUND` naming the first of `user_ids` without a wallet."""
        lookup = self._wallets[len(user_ids)]
        rows = lookup.all(connection, {f"user_{i}": user for i, user in enumerate(user_ids)})
        found = {row[0] for row in rows}
        for user_id in user_ids:
            if user_id not in found:
                raise NotFound(
                    "WALLET_NOT_FOUND", "the user has no wallet", metadata={"user_id": user_id}
                )

    def post(
        self,
        connection: Connection,
        *,
        kind: TransactionKind,
        debit: str,
        credit: str,
        currency_code: str,
        amount_minor: int,
        description: str,
        request_id: str,
        now: datetime,
        hold_id: str | None = None,
    ) -> LedgerTransaction:
        """Move `amount_minor` from `debit` to `credit` in one balanced transaction.

        A user account must have the amount available (FAILED_PRECONDITION
        `INSUFFICIENT_FUNDS` otherwise); system accounts may go negative. The credited
        account is opened if this is its first money.
        """
        # The two accounts are locked in one global order (by owner), so that two
        # transfers in opposite directions between the same users, run side by side
        # by two replicas on PostgreSQL, cannot wait on each other in a cycle. A
        # debit that then fails rolls the credit back with the rest of the command.
        legs = [(debit, -amount_minor), (credit, amount_minor)]
        for owner, delta in sorted(legs, key=lambda leg: leg[0]):
            if delta < 0 and debit not in _SYSTEM_OWNERS:
                self._take_available(connection, owner, currency_code, amount_minor)
            else:
                self._add(connection, owner, currency_code, delta, now)
        transaction = LedgerTransaction(
            transaction_id=new_id(),
            kind=kind,
            currency_code=currency_code,
            postings=(Posting(debit, -amount_minor), Posting(credit, amount_minor)),
            description=description,
            request_id=request_id,
            hold_id=hold_id,
            create_time=now,
        )
        [seq] = self._insert_transaction.first(
            connection,
            {
                "transaction_id": transaction.transaction_id,
                "kind": kind.value,
                "currency_code": currency_code,
                "description": description,
                "request_id": request_id,
                "hold_id": hold_id,
                "create_time": now,
            },
        )
        self._insert_postings.execute_many(
            connection,
            [
                {
                    "seq": seq,
                    "leg": leg,
                    "owner": posting.owner,
                    "currency_code": currency_code,
                    "amount_minor": posting.amount_minor,
                }
                for leg, posting in enumerate(transaction.postings)
            ],
        )
        return transaction

    def reserve(
        self, connection: Connection, user_id: str, currency_code: str, amount_minor: int
    ) -> None:
        """Move `amount_minor` of a user account from available to held."""
        if not _applied(self._reserve, connection, user_id, currency_code, amount_minor):
            raise self._insufficient(connection, user_id, currency_code)

    def release(
        self, connection: Connection, user_id: str, currency_code: str, amount_minor: int
    ) -> None:
        """Return `amount_minor` of a user account from held to available."""
        if not _applied(self._release, connection, user_id, currency_code, amount_minor):
            # Holds and `held_minor` change together; a mismatch is corruption, not input.
            raise RuntimeError(f"account {user_id}/{currency_code} holds less than it released")

    def _take_available(
        self, connection: Connection, owner: str, currency_code: str, amount_minor: int
    ) -> None:
        if not _applied(self._debit_user, connection, owner, currency_code, amount_minor):
            raise self._insufficient(connection, owner, currency_code)

    def _add(
        self, connection: Connection, owner: str, currency_code: str, delta: int, now: datetime
    ) -> None:
        [posted] = self._credit.first(
            connection,
            {
                "account_owner": owner,
                "account_currency": currency_code,
                "system": owner in _SYSTEM_OWNERS,
                "delta": delta,
                "now": now,
            },
        )
        if abs(posted) > BALANCE_LIMIT:  # rolled back with the rest of the command
            raise FailedPrecondition(
                "BALANCE_LIMIT_EXCEEDED",
                "the account would pass the largest balance the ledger keeps",
                metadata={"currency_code": currency_code, "limit_minor": str(BALANCE_LIMIT)},
            )

    def _insufficient(
        self, connection: Connection, owner: str, currency_code: str
    ) -> FailedPrecondition:
        row = self._available.first(
            connection, {"account_owner": owner, "account_currency": currency_code}
        )
        available = row[0] if row else 0
        return FailedPrecondition(
            "INSUFFICIENT_FUNDS",
            "the available balance does not cover the amount",
            metadata={"currency_code": currency_code, "available_minor": str(available)},
        )


_SYSTEM_OWNERS: frozenset[str] = frozenset(SystemAccount)


def _applied(
    change: Prepared, connection: Connection, owner: str, currency_code: str, amount_minor: int
) -> bool:
    """Run a conditional account UPDATE; whether its condition held (one row changed)."""
    parameters = {"account_owner": owner, "account_currency": currency_code, "amount": amount_minor}
    return bool(change.execute(connection, parameters).rowcount == 1)


def counterparty(postings: Sequence[Posting], viewer: str) -> str | None:
    """The one other owner in `postings` as `viewer` sees it; None if there are several."""
    others = {posting.owner for posting in postings if posting.owner != viewer}
    return next(iter(others)) if len(others) == 1 else None


def net_for(postings: Sequence[Posting], viewer: str) -> int:
    """The signed change `postings` made to `viewer`'s account."""
    return sum(posting.amount_minor for posting in postings if posting.owner == viewer)


def account_lock(owner: str, currency_code: str) -> str:
    """The name a command gives the batch writer for an account it will change (see
    `BatchWriter.submit`): replicas' batches that share it queue instead of deadlocking."""
    return f"wallet.account:{owner}:{currency_code}"


def is_system(owner: str) -> bool:
    """Whether `owner` is a system account rather than a user."""
    return owner in _SYSTEM_OWNERS
