"""Catalogue's business metrics: reservations by outcome and stock-outs."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.database.after_commit import after_commit
from services.runtime.metrics import Metrics

__all__ = ["StockMetrics"]


class StockMetrics:
    """`superapp_stock_reservations_total{outcome}` and `superapp_stock_outs_total`, in
    one process's registry."""

    def __init__(self, metrics: Metrics) -> None:
        reservations = metrics.counter(
            "superapp_stock_reservations_total",
            "Reservations of stock, by outcome: reserved, or refused as out_of_stock.",
            ["outcome"],
        )
        self._reserved = reservations.labels("reserved")
        self._out_of_stock = reservations.labels("out_of_stock")
        self._stock_outs = metrics.counter(
            "superapp_stock_outs_total", "Times a product's available stock reached zero."
        )

    def reserved(self, session: AsyncSession) -> None:
        """Units were reserved in `session`'s transaction; counted once it commits (a
        replayed request_id runs no transaction and counts nothing)."""
        after_commit(session).count(self._reserved)

    def out_of_stock(self) -> None:
        """A reservation was refused: fewer units available than it asked for."""
        self._out_of_stock.inc()

    def stock_out(self, session: AsyncSession) -> None:
        """A product's available stock reached zero in `session`'s transaction (the
        change that announces ProductOutOfStock); counted once it commits."""
        after_commit(session).count(self._stock_outs)
