"""Per-IP and per-user rate limits on sign-in and on every write, as route dependencies.

Counters use the `limits` library's sliding-window counter (two fixed windows weighted:
close to a moving window at a fraction of its cost) in the storage named by
`BFF_RATE_LIMIT_STORAGE`: process memory by default, a shared Redis or Memcached URI
when several BFF processes must share one budget. A refusal is 429 with `Retry-After`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from bff.authentication import Principal, require_principal
from bff.client_address import client_address
from bff.config import BffSettings
from services.runtime.errors import ResourceExhausted

__all__ = ["RateLimits", "limit_auth", "limit_writes_by_ip", "limit_writes_by_user"]


class RateLimits:
    """The configured limits and the counters behind them."""

    def __init__(self, settings: BffSettings) -> None:
        storage = storage_from_string(settings.rate_limit_storage)
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self.auth = parse_many(settings.auth_rate_limit)
        self.writes_per_user = parse_many(settings.write_rate_limit_per_user)
        self.writes_per_ip = parse_many(settings.write_rate_limit_per_ip)

    async def hit(self, items: list[RateLimitItem], scope: str, key: str) -> None:
        """Count one request against each of `items`; 429 when one is used up."""
        for item in items:
            if await self._limiter.hit(item, scope, key):
                continue
            stats = await self._limiter.get_window_stats(item, scope, key)
            raise ResourceExhausted(
                "RATE_LIMITED",
                f"too many requests: at most {item.amount} per {_window(item)} {scope}",
                retry_after_seconds=max(1.0, stats.reset_time - time.time()),
                metadata={"limit": str(item.amount), "window": _window(item), "scope": scope},
            )


def _window(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"


def _limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def limit_auth(request: Request) -> None:
    """Sign-up, sign-in, refresh, sign-out: per client IP."""
    limits = _limits(request)
    await limits.hit(limits.auth, "per client address", client_address(request))


async def limit_writes_by_ip(request: Request) -> None:
    """Any write: per client IP, counted before the token is looked at."""
    limits = _limits(request)
    await limits.hit(limits.writes_per_ip, "per client address", client_address(request))


async def limit_writes_by_user(
    request: Request, principal: Annotated[Principal, Depends(require_principal)]
) -> None:
    """Any write: per signed-in user."""
    limits = _limits(request)
    await limits.hit(limits.writes_per_user, "per user", principal.user_id)
