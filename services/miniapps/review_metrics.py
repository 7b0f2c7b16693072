"""Miniapps' business metrics: the automated checks' outcomes and how long they take."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.database.after_commit import after_commit
from services.runtime.metrics import Metrics

__all__ = ["ReviewMetrics"]

# The review of a bundle takes milliseconds for a small app and seconds for 8 MiB of
# minified code; the default RPC buckets stop too early for the latter.
_REVIEW_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ReviewMetrics:
    """`superapp_miniapp_checks_total{outcome}` and `superapp_miniapp_check_seconds`, in
    one process's registry."""

    def __init__(self, metrics: Metrics) -> None:
        checks = metrics.counter(
            "superapp_miniapp_checks_total",
            "Versions the automated checks concluded, by outcome: in_review (passed) or "
            "rejected (a finding).",
            ["outcome"],
        )
        self._passed = checks.labels("in_review")
        self._rejected = checks.labels("rejected")
        self._seconds = metrics.histogram(
            "superapp_miniapp_check_seconds",
            "Time the review library took over one bundle, in seconds.",
            buckets=_REVIEW_BUCKETS,
        )

    def reviewed(self, seconds: float) -> None:
        """The review library ran for `seconds`."""
        self._seconds.observe(seconds)

    def concluded(self, session: AsyncSession, *, passed: bool) -> None:
        """A version left CHECKING in `session`'s transaction; counted once it commits."""
        after_commit(session).count(self._passed if passed else self._rejected)
