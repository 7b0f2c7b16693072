"""A label whose values come from data (merchant ids), kept to a bounded set.

Every distinct label value is a time series that Prometheus keeps for as long as the
process lives and stores for the retention period; a label fed by ids grows without
end. `BoundedLabels` lets the first `limit` distinct values a process sees through as
they are and reports every later one as `other`, so the series of one family and
process never number more than `limit + 1`. The values a process keeps are the ones it
met first, which differ between replicas and restarts: a dashboard reads the named
series as "the merchants this process saw first" and `other` as the rest, and the sum
over all values is always exact.
"""

from __future__ import annotations

import threading

__all__ = ["OTHER", "BoundedLabels"]

OTHER = "other"
"""The value every label past the bound reads."""


class BoundedLabels:
    """The first `limit` distinct values seen, as themselves; later ones as `other`."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self._limit = limit
        self._kept: set[str] = set()
        # Counted from after-commit actions, the event loop's thread; the lock keeps
        # the bound exact should another thread ever count too.
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        """The label value to record for `value`."""
        if value in self._kept:
            return value
        with self._lock:
            if value in self._kept:
                return value
            if len(self._kept) < self._limit:
                self._kept.add(value)
                return value
        return OTHER

    @property
    def kept(self) -> frozenset[str]:
        """The values that keep their own label."""
        return frozenset(self._kept)
