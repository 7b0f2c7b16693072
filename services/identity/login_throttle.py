"""Block sign-ins for an email after repeated failures, whether or not it has an account.

Counting failures for unknown emails too means the block itself reveals nothing about
which addresses are registered. The block ends by itself when its window passes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.identity.models import LoginThrottle
from services.runtime.errors import ResourceExhausted

__all__ = ["LoginThrottling"]


class LoginThrottling:
    """`max_failures` within `window` block the email for `block`."""

    def __init__(self, max_failures: int, window: timedelta, block: timedelta) -> None:
        self._max_failures = max_failures
        self._window = window
        self._block = block

    @staticmethod
    def key(email: str) -> str:
        """The row key: a digest, so the table is no list of tried addresses."""
        return hashlib.sha256(b"superapp.login:" + email.encode()).hexdigest()

    async def check(self, session: AsyncSession, email: str, now: datetime) -> None:
        """RESOURCE_EXHAUSTED `TOO_MANY_ATTEMPTS` while the email is blocked."""
        row = await session.get(LoginThrottle, self.key(email))
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            raise ResourceExhausted(
                "TOO_MANY_ATTEMPTS",
                "too many failed sign-ins for this email; try again later",
                retry_after_seconds=(row.blocked_until - now).total_seconds(),
            )

    async def failed(self, session: AsyncSession, email: str, now: datetime) -> None:
        """Count one failure; the one that reaches the limit starts the block."""
        row = await session.get(LoginThrottle, self.key(email), with_for_update=True)
        if row is None:
            session.add(LoginThrottle(email_key=self.key(email), failures=1, window_start=now))
            return
        if now - row.window_start > self._window:
            row.failures, row.window_start, row.blocked_until = 1, now, None
        else:
            row.failures += 1
        if row.failures >= self._max_failures:
            row.blocked_until = now + self._block
            row.failures, row.window_start = 0, now

    async def succeeded(self, session: AsyncSession, email: str) -> None:
        """Forget the email's failures."""
        row = await session.get(LoginThrottle, self.key(email))
        if row is not None:
            await session.delete(row)
