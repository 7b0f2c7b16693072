"""The BFF as a service of its own: its token (role `system`) and the mini-app token
verifier that needs it.

Mini-app tokens are checked with identity's introspection, which only services may call,
and `/v1/mini-app-api/me` reads a user's display name with the same token. Both exist
only when `BFF_CLIENT_SECRET` is set; without it the mini-app API answers 503 and the
rest of the BFF works as before.

A failure to get the BFF's own token, or to have identity introspect, is the platform's
fault, not the calling mini-app's: it is reported as 503 `MINI_APP_API_UNAVAILABLE`,
never as the 401 identity gave the BFF (which would tell a mini-app its valid token is
bad).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import grpc

from bff.config import BffSettings
from services.auth.jwks import JwksCache
from services.auth.miniapp_tokens import MiniAppTokenReader
from services.auth.miniapp_verifier import MiniAppTokenVerifier, grpc_introspector
from services.auth.service_token import ServiceToken
from services.runtime.clock import Clock
from services.runtime.errors import Unavailable

__all__ = ["ServiceIdentity", "not_configured", "platform_failures"]

_log = logging.getLogger(__name__)


def not_configured() -> Unavailable:
    """What the mini-app API answers on a BFF without `BFF_CLIENT_SECRET`."""
    return Unavailable(
        "MINI_APP_API_NOT_CONFIGURED",
        "the mini-app API is not configured on this server (BFF_CLIENT_SECRET is unset)",
    )


@asynccontextmanager
async def platform_failures(what: str) -> AsyncIterator[None]:
    """Inside, an identity call that fails is 503 `MINI_APP_API_UNAVAILABLE`."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        _log.warning("%s failed: %s", what, error.code().name)
        raise Unavailable("MINI_APP_API_UNAVAILABLE", f"{what} failed; try again shortly") from None


class ServiceIdentity:
    """The BFF's service token and its mini-app token verifier."""

    def __init__(
        self,
        settings: BffSettings,
        identity: grpc.aio.Channel,
        jwks: JwksCache,
        clock: Clock,
    ) -> None:
        if settings.client_secret is None:
            raise ValueError("BFF_CLIENT_SECRET is unset")
        self.token = ServiceToken(
            identity,
            settings.client_id,
            settings.client_secret.get_secret_value(),
            clock,
            timeout_seconds=settings.upstream_timeout_seconds,
        )
        self.verifier = MiniAppTokenVerifier(
            MiniAppTokenReader(jwks, issuer=settings.token_issuer, clock=clock),
            grpc_introspector(identity, self.token, timeout=settings.upstream_timeout_seconds),
            clock,
            cache_for=timedelta(seconds=settings.mini_app_token_cache_seconds),
        )

    @classmethod
    def of(
        cls, settings: BffSettings, identity: grpc.aio.Channel, jwks: JwksCache, clock: Clock
    ) -> ServiceIdentity | None:
        """The BFF's service identity, or None when `BFF_CLIENT_SECRET` is unset."""
        if settings.client_secret is None:
            return None
        return cls(settings, identity, jwks, clock)

    async def metadata(self) -> tuple[tuple[str, str], ...]:
        """Bearer metadata with the BFF's own token; 503 when none can be had."""
        async with platform_failures("getting the BFF's service token"):
            return await self.token.metadata()
