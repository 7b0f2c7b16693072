"""A user's transactions, newest first, paged by position in the ledger's commit order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select

from services.database import Database
from services.runtime.errors import NotFound
from services.wallet.ledger import LedgerTransaction, Posting, TransactionKind
from services.wallet.models import POSTINGS, TRANSACTIONS, WALLETS

__all__ = ["History", "HistoryPage"]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Transactions newest first; `next_before` is the position to continue from."""

    transactions: tuple[LedgerTransaction, ...]
    next_before: int | None


def _positions(currency: bool) -> Select[tuple[int]]:
    statement = select(POSTINGS.c.seq).where(
        POSTINGS.c.owner == bindparam("user_id"), POSTINGS.c.seq < bindparam("before")
    )
    if currency:
        statement = statement.where(POSTINGS.c.currency_code == bindparam("currency_code"))
    return statement.order_by(POSTINGS.c.seq.desc()).limit(bindparam("limit"))


class History:
    """Reads the transaction history of one user."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._all_currencies = _positions(currency=False)
        self._one_currency = _positions(currency=True)
        self._details = (
            select(
                TRANSACTIONS,
                POSTINGS.c.leg,
                POSTINGS.c.owner,
                POSTINGS.c.amount_minor,
            )
            .join(POSTINGS, POSTINGS.c.seq == TRANSACTIONS.c.seq)
            .where(TRANSACTIONS.c.seq.in_(bindparam("seqs", expanding=True)))
            .order_by(TRANSACTIONS.c.seq.desc(), POSTINGS.c.leg)
        )
        self._wallet = select(WALLETS.c.user_id).where(WALLETS.c.user_id == bindparam("user_id"))

    async def page(
        self, user_id: str, *, currency_code: str, size: int, before: int | None
    ) -> HistoryPage:
        """Up to `size` transactions of `user_id` older than position `before`.

        Positions only grow, so a page continues exactly where the previous one ended
        however many transactions land meanwhile. Transactions are immutable, so the
        two reads need no common snapshot.
        """
        statement = self._one_currency if currency_code else self._all_currencies
        parameters = {
            "user_id": user_id,
            "currency_code": currency_code,
            "before": before if before is not None else 2**62,
            "limit": size + 1,
        }
        seqs = [row.seq for row in await self._database.lookup(statement, parameters)]
        if not seqs and not await self._database.lookup(self._wallet, {"user_id": user_id}):
            raise NotFound(
                "WALLET_NOT_FOUND", "the user has no wallet", metadata={"user_id": user_id}
            )
        more = len(seqs) > size
        seqs = seqs[:size]
        transactions: list[LedgerTransaction] = []
        if seqs:
            rows = await self._database.lookup(self._details, {"seqs": seqs})
            legs: dict[int, list[Posting]] = {}
            firsts: dict[int, Any] = {}
            for row in rows:
                legs.setdefault(row.seq, []).append(Posting(row.owner, row.amount_minor))
                firsts.setdefault(row.seq, row)
            for seq in seqs:
                row = firsts[seq]
                transactions.append(
                    LedgerTransaction(
                        transaction_id=row.transaction_id,
                        kind=TransactionKind(row.kind),
                        currency_code=row.currency_code,
                        postings=tuple(legs[seq]),
                        description=row.description,
                        request_id=row.request_id,
                        hold_id=row.hold_id,
                        create_time=row.create_time,
                    )
                )
        return HistoryPage(tuple(transactions), seqs[-1] if more else None)
