"""How a service other than identity verifies tokens: identity's JWKS over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from services.auth.jwks import JwksCache, grpc_jwks_fetcher
from services.auth.verifier import TokenVerifier
from services.runtime.clock import Clock
from services.runtime.settings import ServiceSettings

__all__ = ["IdentityPeer"]


@dataclass(frozen=True)
class IdentityPeer:
    """One long-lived channel to identity and the token verifier fed by it.

    Keys are fetched lazily, on the first token to verify, so a service starts (and
    serves public RPCs) before identity is up.
    """

    channel: grpc.aio.Channel
    verifier: TokenVerifier

    @classmethod
    def connect(cls, settings: ServiceSettings, clock: Clock) -> IdentityPeer:
        """A channel to `settings.identity_addr` and a verifier for its tokens."""
        channel = grpc.aio.insecure_channel(settings.identity_addr)
        verifier = TokenVerifier(
            JwksCache(grpc_jwks_fetcher(channel), clock=clock),
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            clock=clock,
        )
        return cls(channel, verifier)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()
