"""How a service other than identity verifies tokens: identity's JWKS over gRPC."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from superapp.identity.v1 import identity_service_pb2

from services.auth.jwks import JwksCache, grpc_jwks_fetcher
from services.auth.verifier import TokenVerifier
from services.runtime.channels import open_channel
from services.runtime.clock import Clock
from services.runtime.settings import ServiceSettings

__all__ = ["IdentityPeer"]

_IDENTITY_SERVICE = identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"]
_TIMEOUT_SECONDS = 5.0
"""The deadline of a call that sets none: identity answers keys and tokens from memory."""


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
        """A channel to `settings.identity_addr` (every replica of identity, see
        `services.runtime.channels`) and a verifier for its tokens."""
        channel = open_channel(
            settings.identity_addr, [_IDENTITY_SERVICE], timeout_seconds=_TIMEOUT_SECONDS
        )
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
