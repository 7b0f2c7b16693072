"""Per-IP and per-user rate limits on sign-in and on every write, as route dependencies,
and per-mini-app rate limits and daily quotas on the mini-app API (by client id; the
mini-app caller dependency, `bff.mini_app_callers`, applies them).

Counters use the `limits` library's sliding-window counter (two fixed windows weighted:
close to a moving window at a fraction of its cost) in the storage named by
`BFF_RATE_LIMIT_STORAGE`: process memory by default, a shared Redis when several BFF
processes must share one budget. A refusal is 429 with `Retry-After`.

A storage that cannot be reached, or does not answer within the upstream deadline, makes
the limited routes answer 503 (`RATE_LIMITS_UNAVAILABLE`) until it is back, and the BFF
keeps serving everything else. It is not a start-up failure: Redis may go away at any
time after start anyway, and a BFF that refused to start without it would take the reads
down with the writes. At start-up an unreachable storage is logged, naming the setting.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from bff.authentication import Principal, require_principal
from bff.client_address import client_address
from bff.config import BffSettings
from services.runtime.errors import ResourceExhausted, Unavailable

__all__ = ["RateLimits", "limit_auth", "limit_writes_by_ip", "limit_writes_by_user"]

_log = logging.getLogger(__name__)
_SETTING = "BFF_RATE_LIMIT_STORAGE"


class RateLimits:
    """The configured limits and the counters behind them."""

    def __init__(self, settings: BffSettings) -> None:
        storage = storage_from_string(settings.rate_limit_storage, wrap_exceptions=True)
        if not isinstance(storage, AsyncStorage):  # the settings accept async+ URIs only
            raise TypeError(f"not an async storage: {type(storage).__name__}")
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._timeout = settings.upstream_timeout_seconds
        # Counters in this process's memory see only this replica's share of the traffic.
        share = settings.replicas if settings.rate_limit_storage.startswith("async+memory") else 1
        self.auth = _shares(parse_many(settings.auth_rate_limit), share)
        self.writes_per_user = _shares(parse_many(settings.write_rate_limit_per_user), share)
        self.writes_per_ip = _shares(parse_many(settings.write_rate_limit_per_ip), share)
        self.mini_app_rate = _shares(parse_many(settings.mini_app_rate_limit), share)
        self.mini_app_quota = _shares(parse_many(settings.mini_app_daily_quota), share)

    async def check_storage(self) -> bool:
        """Whether the counters' storage answers; logs a warning when it does not."""
        try:
            async with asyncio.timeout(self._timeout):
                reachable = await self._storage.check()
        except TimeoutError:
            reachable = False
        if not reachable:
            _log.warning(
                "%s cannot be reached: rate-limited routes answer 503 until it can", _SETTING
            )
        return reachable

    async def hit(
        self,
        items: list[RateLimitItem],
        scope: str,
        key: str,
        *,
        reason: str = "RATE_LIMITED",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Count one request against each of `items`; 429 `reason` (with `metadata`
        besides the limit's own) when one is used up, 503 when the counters cannot be
        reached."""
        try:
            async with asyncio.timeout(self._timeout):
                for item in items:
                    if await self._limiter.hit(item, scope, key):
                        continue
                    stats = await self._limiter.get_window_stats(item, scope, key)
                    raise ResourceExhausted(
                        reason,
                        f"too many requests: at most {item.amount} per {_window(item)} {scope}",
                        retry_after_seconds=max(1.0, stats.reset_time - time.time()),
                        metadata={
                            "limit": str(item.amount),
                            "window": _window(item),
                            "scope": scope,
                            **(metadata or {}),
                        },
                    )
        except (StorageError, TimeoutError) as error:
            cause = error.storage_error if isinstance(error, StorageError) else error
            # The storage URI may carry a password: the log names the setting, not it.
            _log.warning("%s failed: %s", _SETTING, type(cause).__name__)
            raise Unavailable(
                "RATE_LIMITS_UNAVAILABLE", "the rate-limit counters cannot be reached"
            ) from None

    async def hit_mini_app(self, client_id: str) -> None:
        """One call of mini-app `client_id`'s backend: its rate limit, then its daily
        quota (429 `RATE_LIMITED` or `QUOTA_EXCEEDED`, naming the client and the limit)."""
        await self.hit(
            self.mini_app_rate,
            "per mini-app",
            client_id,
            metadata={"client_id": client_id, "limit_name": "BFF_MINI_APP_RATE_LIMIT"},
        )
        await self.hit(
            self.mini_app_quota,
            "per mini-app quota",
            client_id,
            reason="QUOTA_EXCEEDED",
            metadata={"client_id": client_id, "limit_name": "BFF_MINI_APP_DAILY_QUOTA"},
        )


def _shares(items: list[RateLimitItem], replicas: int) -> list[RateLimitItem]:
    """Each limit of `items` divided between `replicas` processes (at least 1 each)."""
    if replicas == 1:
        return items
    return [type(item)(max(1, item.amount // replicas), item.multiples) for item in items]


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
