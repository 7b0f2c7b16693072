"""How a platform service accepts a mini-app's access token (resource server side).

A mini-app token is checked locally first (signature with identity's published keys,
type `miniapp+jwt`, issuer, expiry, and the audience the caller expects: the mini-app
that authenticated to it), then identity is asked whether it is still in force
(`IntrospectMiniAppToken`, RFC 7662): the grant may have been revoked by its user, or
the mini-app suspended, seconds ago. The answer is remembered for `cache_for` (2 s by
default), which bounds how long a revocation or suspension can go unnoticed here, and
spares identity a call per request of a busy mini-app.

Why introspection rather than a local list of revocations learned from events: grants
live only in identity's database, so identity answers with what every replica of it
sees at once; a resource server needs no table, no consumer and no catch-up after a
restart, and the staleness is one number that is easy to state and to test.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import grpc
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from services.auth.jwks import JwksCache, grpc_jwks_fetcher
from services.auth.miniapp_tokens import MiniAppClaims, MiniAppTokenReader
from services.auth.service_token import ServiceToken
from services.runtime.clock import Clock
from services.runtime.errors import PermissionDenied, Unauthenticated

__all__ = [
    "Introspect",
    "Introspection",
    "MiniAppCaller",
    "MiniAppTokenVerifier",
    "grpc_introspector",
    "miniapp_verifier",
]

DEFAULT_CACHE = timedelta(seconds=2)


@dataclass(frozen=True, slots=True)
class Introspection:
    """Identity's answer about one token (RFC 7662)."""

    active: bool
    client_id: str = ""
    scopes: frozenset[str] = frozenset()
    subject: str = ""
    user_id: str = ""
    """The user's real id: for the platform's own use, never to be sent to a mini-app."""
    grant_id: str = ""


Introspect = Callable[[str], Awaitable[Introspection]]
"""Asks identity about a token; raises when identity cannot answer now."""


@dataclass(frozen=True, slots=True)
class MiniAppCaller:
    """A mini-app acting for a user through a grant in force."""

    client_id: str
    subject: str
    """The pairwise subject, which the mini-app knows the user by."""
    user_id: str
    """The user's real id, for the platform's own records; never sent to the mini-app."""
    scopes: frozenset[str]
    grant_id: str

    def require_scope(self, scope: str) -> None:
        """PERMISSION_DENIED `INSUFFICIENT_SCOPE` unless the user granted `scope`."""
        if scope not in self.scopes:
            raise PermissionDenied(
                "INSUFFICIENT_SCOPE",
                f"the user did not grant the mini-app {scope!r}",
                metadata={"scope": scope, "client_id": self.client_id},
            )


def _reject(message: str) -> Unauthenticated:
    return Unauthenticated("UNAUTHENTICATED", message)


class MiniAppTokenVerifier:
    """Local checks, then identity's word, remembered briefly (see the module doc)."""

    def __init__(
        self,
        reader: MiniAppTokenReader,
        introspect: Introspect,
        clock: Clock,
        *,
        cache_for: timedelta = DEFAULT_CACHE,
        remembered_tokens: int = 4096,
    ) -> None:
        self._reader = reader
        self._introspect = introspect
        self._clock = clock
        self._cache_for = cache_for
        self._capacity = max(0, remembered_tokens)
        # token → (answer, when it was had); insertion order gives FIFO eviction.
        self._answers: dict[str, tuple[Introspection, datetime]] = {}

    @property
    def cache_for(self) -> timedelta:
        """How long identity's answer about a token is remembered: the longest a
        revocation or a suspension can go unnoticed by this verifier."""
        return self._cache_for

    async def verify(self, token: str, *, audience: str) -> MiniAppCaller:
        """The mini-app and user `token` proves, if it is for `audience` (the client id
        of the mini-app calling) and in force; Unauthenticated `UNAUTHENTICATED` else."""
        claims = await self._reader.read(token)
        if claims.client_id != audience:
            raise _reject("token is for another mini-app")
        return await self._in_force(token, claims)

    async def verify_for_itself(self, token: str) -> MiniAppCaller:
        """As `verify`, for a gateway that serves every mini-app (the BFF): the audience
        is the token's own client, and identity's answer that the token is active is
        what vouches that this client is a mini-app in good standing."""
        claims = await self._reader.read(token)
        return await self._in_force(token, claims)

    async def _in_force(self, token: str, claims: MiniAppClaims) -> MiniAppCaller:
        answer = await self._answer(token)
        if not answer.active:
            raise _reject("mini-app token revoked or its mini-app suspended")
        if answer.client_id != claims.client_id or answer.grant_id != claims.grant_id:
            raise _reject("mini-app token does not match identity's record")
        return MiniAppCaller(
            client_id=claims.client_id,
            subject=claims.subject,
            user_id=answer.user_id,
            scopes=claims.scopes & answer.scopes,
            grant_id=claims.grant_id,
        )

    async def _answer(self, token: str) -> Introspection:
        now = self._clock.now()
        remembered = self._answers.get(token)
        if remembered is not None:
            answer, asked = remembered
            if now - asked < self._cache_for:
                return answer
            del self._answers[token]
        answer = await self._introspect(token)
        if self._capacity:
            if len(self._answers) >= self._capacity:
                del self._answers[next(iter(self._answers))]
            self._answers[token] = (answer, now)
        return answer


def grpc_introspector(
    channel: grpc.aio.Channel, service_token: ServiceToken, *, timeout: float = 5.0
) -> Introspect:
    """Introspection over gRPC, authenticated as the calling service (role `system`)."""
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)

    async def introspect(token: str) -> Introspection:
        reply = await stub.IntrospectMiniAppToken(
            identity_service_pb2.IntrospectMiniAppTokenRequest(token=token),
            metadata=await service_token.metadata(),
            timeout=timeout,
        )
        if not reply.active:
            return Introspection(active=False)
        return Introspection(
            active=True,
            client_id=reply.client_id,
            scopes=frozenset(reply.scopes),
            subject=reply.subject,
            user_id=reply.user_id,
            grant_id=reply.grant_id,
        )

    return introspect


def miniapp_verifier(
    channel: grpc.aio.Channel,
    service_token: ServiceToken,
    *,
    issuer: str,
    clock: Clock,
    cache_for: timedelta = DEFAULT_CACHE,
) -> MiniAppTokenVerifier:
    """A verifier for a service that takes mini-app tokens: identity's keys and its
    introspection over `channel` (an `IdentityPeer`'s), as the service client whose
    token `service_token` renews."""
    reader = MiniAppTokenReader(
        JwksCache(grpc_jwks_fetcher(channel), clock=clock), issuer=issuer, clock=clock
    )
    return MiniAppTokenVerifier(
        reader, grpc_introspector(channel, service_token), clock, cache_for=cache_for
    )
