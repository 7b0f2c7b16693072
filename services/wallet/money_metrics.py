"""The wallet's business metrics: money moved, refusals, and its sign-up funnel stages."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.database.after_commit import AfterCommit, after_commit
from services.runtime.metrics import Metrics
from services.runtime.signup_funnel import SignupStage, signup_funnel
from services.wallet.ledger import LedgerTransaction, TransactionKind

__all__ = ["REFUSALS", "MoneyMetrics"]

REFUSALS = frozenset(
    {
        "INSUFFICIENT_FUNDS",
        "LIMIT_EXCEEDED",
        "BALANCE_LIMIT_EXCEEDED",
        "CURRENCY_MISMATCH",
        "CAPTURE_EXCEEDS_HOLD",
        "HOLD_EXPIRED",
        "HOLD_ALREADY_RESOLVED",
    }
)
"""The `ErrorInfo.reason`s of the ledger's money rules: the `reason` label's whole set.
Input errors, unknown wallets and reused request ids are not refusals of money."""

_KINDS = {
    TransactionKind.CREDIT: "top_up",
    TransactionKind.TRANSFER: "transfer",
    TransactionKind.HOLD_CAPTURE: "capture",
}


class MoneyMetrics:
    """`superapp_money_moved_minor_total{currency,kind}`,
    `superapp_wallet_refusals_total{reason}` and the `wallet_opened` and `first_top_up`
    stages of `superapp_signup_funnel_total`, in one process's registry."""

    def __init__(self, metrics: Metrics) -> None:
        funnel = signup_funnel(metrics, SignupStage.WALLET_OPENED, SignupStage.FIRST_TOP_UP)
        self._opened = funnel.labels(SignupStage.WALLET_OPENED.value)
        self._first_top_up = funnel.labels(SignupStage.FIRST_TOP_UP.value)
        self._moved = metrics.counter(
            "superapp_money_moved_minor_total",
            "Money that entered or crossed wallets, in minor units of its currency.",
            ["currency", "kind"],
        )
        refusals = metrics.counter(
            "superapp_wallet_refusals_total",
            "Transfers, holds and captures the ledger's money rules refused.",
            ["reason"],
        )
        self._refusals = {reason: refusals.labels(reason) for reason in REFUSALS}

    def opened(self, session: AsyncSession) -> None:
        """A wallet was opened in `session`'s transaction; counted once it commits."""
        after_commit(session).count(self._opened)

    def moved(self, counts: AfterCommit, transaction: LedgerTransaction, *, first: bool) -> None:
        """`transaction` was posted (`first`: the user's first top-up); counted when its
        batch commits.

        Currencies are bounded by what reaches the ledger: money only exists in a
        currency an admin topped up.
        """
        amount = sum(p.amount_minor for p in transaction.postings if p.amount_minor > 0)
        counts.count(
            self._moved.labels(transaction.currency_code, _KINDS[transaction.kind]), amount
        )
        if first:
            counts.count(self._first_top_up)

    def refused(self, reason: str) -> None:
        """A change was refused with `reason` (ignored unless one of `REFUSALS`)."""
        counter = self._refusals.get(reason)
        if counter is not None:
            counter.inc()
