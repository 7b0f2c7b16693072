"""A wallet's balances, read from the maintained account rows in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, and_, bindparam, cast, func, select

from services.database import Database
from services.runtime.clock import Clock
from services.runtime.errors import NotFound
from services.wallet.holds import HoldStatus
from services.wallet.models import ACCOUNTS, HOLDS, WALLETS

__all__ = ["Balance", "Balances", "WalletView"]


@dataclass(frozen=True, slots=True)
class Balance:
    """One currency account: available = posted - held."""

    currency_code: str
    available_minor: int
    held_minor: int


@dataclass(frozen=True, slots=True)
class WalletView:
    """A wallet with its accounts, sorted by currency."""

    user_id: str
    create_time: datetime
    balances: tuple[Balance, ...]


class Balances:
    """Reads wallets."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock
        # Holds past their expiry no longer reserve anything even before the sweep
        # records it. One statement, so account and holds come from one snapshot.
        due = (
            # PostgreSQL sums bigints as numeric.
            select(cast(func.coalesce(func.sum(HOLDS.c.amount_minor), 0), BigInteger))
            .where(
                HOLDS.c.user_id == ACCOUNTS.c.owner,
                HOLDS.c.currency_code == ACCOUNTS.c.currency_code,
                HOLDS.c.status == HoldStatus.PENDING.value,
                HOLDS.c.expire_time <= bindparam("now"),
            )
            .scalar_subquery()
        )
        self._wallet = (
            select(
                WALLETS.c.create_time,
                ACCOUNTS.c.currency_code,
                ACCOUNTS.c.posted_minor,
                ACCOUNTS.c.held_minor,
                due.label("due_minor"),
            )
            .select_from(WALLETS.outerjoin(ACCOUNTS, and_(ACCOUNTS.c.owner == WALLETS.c.user_id)))
            .where(WALLETS.c.user_id == bindparam("user_id"))
            .order_by(ACCOUNTS.c.currency_code)
        )

    async def wallet(self, user_id: str) -> WalletView:
        """The wallet of `user_id`; NOT_FOUND `WALLET_NOT_FOUND` if it has none."""
        rows = await self._database.lookup(
            self._wallet, {"user_id": user_id, "now": self._clock.now()}
        )
        if not rows:
            raise NotFound(
                "WALLET_NOT_FOUND", "the user has no wallet", metadata={"user_id": user_id}
            )
        balances = tuple(
            Balance(
                currency_code=row.currency_code,
                available_minor=row.posted_minor - row.held_minor + row.due_minor,
                held_minor=row.held_minor - row.due_minor,
            )
            for row in rows
            if row.currency_code is not None
        )
        return WalletView(user_id, rows[0].create_time, balances)
