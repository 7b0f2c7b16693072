"""Forgetting authorization codes once remembering them protects nothing.

A code's row outlives its 60 seconds so that a second redemption is recognised as reuse
and revokes the grant (RFC 6749 §4.1.2). Once it has been expired for as long as a
mini-app token lives, every token its first redemption could have bought has expired
too, and the row goes.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from services.database import Database
from services.identity.miniapp_token_issuer import MINIAPP_TOKEN_TTL
from services.identity.models import OAUTH_CODES
from services.runtime.clock import Clock
from services.runtime.sweeper import Sweeper

__all__ = ["CodeRetention"]

_K = OAUTH_CODES.c
_BATCH = 1000


class CodeRetention:
    """Prunes `oauth_codes`; replicas may prune at once (a row deleted twice is fine)."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    async def prune(self, *, limit: int = _BATCH) -> int:
        """Forget up to `limit` codes expired longer than a token lives; how many."""
        due = (
            select(_K.code_sha256)
            .where(_K.expire_time < self._clock.now() - MINIAPP_TOKEN_TTL)
            .limit(limit)
            .scalar_subquery()
        )
        async with self._database.write() as session:
            result = await session.execute(delete(OAUTH_CODES).where(_K.code_sha256.in_(due)))
        return int(getattr(result, "rowcount", 0) or 0)

    def sweeper(self, *, interval_seconds: float = 300.0) -> Sweeper:
        """A sweeper that prunes, a thousand codes at a time."""
        return Sweeper(
            "oauth-code-retention", self.prune, batch=_BATCH, interval_seconds=interval_seconds
        )
