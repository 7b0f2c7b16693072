"""A service's own access token (role `system`), from identity's IssueServiceToken.

For work no user's token covers: a background job acting for a user after the user's
short-lived token is gone. The token is fetched on first use, cached, and renewed once
two thirds of its lifetime have passed, so calls never carry a token about to expire;
concurrent callers share one fetch. While identity cannot be reached, the cached token
is used for as long as it is valid.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import grpc
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from services.runtime.clock import Clock

__all__ = ["ServiceToken"]

_RENEW_AT = 2 / 3
"""Share of a token's lifetime after which it is renewed."""


class ServiceToken:
    """The bearer metadata of a service client, renewed before it expires."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        client_id: str,
        client_secret: str,
        clock: Clock,
        *,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._stub = identity_service_pb2_grpc.IdentityServiceStub(channel)
        self._request = identity_service_pb2.IssueServiceTokenRequest(
            client_id=client_id, client_secret=client_secret
        )
        self._clock = clock
        self._timeout = timeout_seconds
        self._metadata: tuple[tuple[str, str], ...] = ()
        self._renew_time: datetime | None = None
        self._expire_time: datetime | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """`(("authorization", "Bearer …"),)` with a fresh token; raises the identity
        call's `grpc.aio.AioRpcError` when no token can be had."""
        if self._renew_time is None or self._clock.now() >= self._renew_time:
            async with self._lock:
                if self._renew_time is None or self._clock.now() >= self._renew_time:
                    try:
                        await self._renew()
                    except grpc.aio.AioRpcError:
                        if not self._still_valid():
                            raise
        return self._metadata

    def _still_valid(self) -> bool:
        # A margin for the call the token is about to go on, and for clock skew.
        margin = timedelta(seconds=30)
        return self._expire_time is not None and self._clock.now() + margin < self._expire_time

    async def _renew(self) -> None:
        asked = self._clock.now()
        reply = await self._stub.IssueServiceToken(self._request, timeout=self._timeout)
        expires = reply.expire_time.ToDatetime(tzinfo=asked.tzinfo)
        self._metadata = (("authorization", f"Bearer {reply.access_token}"),)
        self._expire_time = expires
        self._renew_time = asked + (expires - asked) * _RENEW_AT
