"""The saga steps of each kind of order: the seam where a payment differs from a purchase.

Both kinds share the saga, the states, the leases, the reconciler and the events. A
product order reserves stock, holds the funds and commits the reservation (the pivot:
the units are sold) before it captures the hold. A payment order has no stock: it holds
the funds, and the hold is its pivot (the buyer confirmed the payment, so once the money
is held it is owed to the merchant and is collected going forward, like a sold order's).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.orders.records import OrderKind, Step

__all__ = ["KindSteps", "steps_of"]


@dataclass(frozen=True, slots=True)
class KindSteps:
    """Where an attempt of one kind starts, pivots and turns back."""

    first: Step
    """An attempt's first forward step."""
    before_pivot: frozenset[Step]
    """Forward steps of an attempt that is not past its pivot yet: compensable."""
    undo_from: Step
    """Where compensation starts (it then goes on to the void of the hold)."""
    pivot_at_hold: bool
    """A held payment is owed (payment) rather than still waiting for a commit (product)."""
    returns_units: bool
    """An uncollectable payment puts units back in stock before the order is REVERSED."""


_PRODUCT = KindSteps(
    first=Step.RESERVE,
    before_pivot=frozenset({Step.RESERVE, Step.HOLD, Step.COMMIT}),
    undo_from=Step.RELEASE,
    pivot_at_hold=False,
    returns_units=True,
)
_PAYMENT = KindSteps(
    first=Step.HOLD,
    before_pivot=frozenset({Step.HOLD}),
    undo_from=Step.VOID,
    pivot_at_hold=True,
    returns_units=False,
)


def steps_of(kind: OrderKind) -> KindSteps:
    """The steps orders of `kind` take."""
    return _PRODUCT if kind is OrderKind.PRODUCT else _PAYMENT
