"""Read a mini-app access token: signature, type, issuer and times, checked locally.

The format is documented on `IdentityService.ExchangeAuthorizationCode`. Reading proves
only that identity issued the token and that it has not expired; whether its grant and
its mini-app are still in force is identity's to say (`MiniAppTokenVerifier` asks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from services.auth.jwks import JwksCache
from services.auth.token_format import ALGORITHM, MINIAPP_TOKEN_TYPE, is_canonical_uuid
from services.auth.verifier import DEFAULT_LEEWAY, MAX_TOKEN_LENGTH
from services.runtime.clock import Clock
from services.runtime.errors import Unauthenticated

__all__ = ["MiniAppClaims", "MiniAppTokenReader", "scopes_of"]

_REQUIRED = ["iss", "aud", "sub", "exp", "iat", "jti", "client_id", "scope", "gid"]


def _reject(message: str) -> Unauthenticated:
    return Unauthenticated("UNAUTHENTICATED", message)


def scopes_of(scope: str) -> frozenset[str]:
    """The scopes of an RFC 6749 `scope` value (space-separated)."""
    return frozenset(scope.split())


@dataclass(frozen=True, slots=True)
class MiniAppClaims:
    """What a mini-app token says, once its signature, type, issuer and times hold."""

    client_id: str
    """`aud`, `azp` and `client_id`: the mini-app the token is for."""
    subject: str
    """The pairwise subject: the user as this mini-app knows them."""
    scopes: frozenset[str]
    grant_id: str
    token_id: str
    expire_time: datetime


class MiniAppTokenReader:
    """Checks mini-app tokens against the published keys, the issuer and the clock."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        clock: Clock,
        leeway: timedelta = DEFAULT_LEEWAY,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._clock = clock
        self._leeway = leeway.total_seconds()

    async def read(self, token: str) -> MiniAppClaims:
        """The claims of `token`; Unauthenticated `UNAUTHENTICATED` if it is not a valid,
        unexpired mini-app token of this issuer."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise _reject("malformed mini-app token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _reject("malformed mini-app token") from None
        if header.get("alg") != ALGORITHM:
            raise _reject("token algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() != MINIAPP_TOKEN_TYPE:
            raise _reject("not a mini-app token")
        kid = header.get("kid")
        key = await self._jwks.key(kid) if isinstance(kid, str) and kid else None
        if key is None:
            raise _reject("unknown token signing key")
        try:
            # Times are checked below against the service's clock, the audience by the
            # caller that knows which mini-app it expects.
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={
                    "require": _REQUIRED,
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidIssuerError:
            raise _reject("wrong token issuer") from None
        except jwt.InvalidTokenError:
            raise _reject("invalid mini-app token") from None
        return self._checked(claims)

    def _checked(self, claims: dict[str, Any]) -> MiniAppClaims:
        now = self._clock.now().timestamp()
        exp, iat = claims["exp"], claims["iat"]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (exp, iat)):
            raise _reject("token times missing")
        if now >= exp + self._leeway:
            raise _reject("token expired")
        if iat > now + self._leeway:
            raise _reject("token not valid yet")
        client_id, audience = claims["client_id"], claims["aud"]
        if not isinstance(client_id, str) or audience != client_id:
            raise _reject("token audience is not its client")
        subject, scope, grant_id, token_id = (
            claims["sub"],
            claims["scope"],
            claims["gid"],
            claims["jti"],
        )
        if not (
            isinstance(subject, str)
            and subject
            and isinstance(scope, str)
            and is_canonical_uuid(grant_id)
            and is_canonical_uuid(token_id)
        ):
            raise _reject("malformed mini-app token claims")
        return MiniAppClaims(
            client_id=client_id,
            subject=subject,
            scopes=scopes_of(scope),
            grant_id=grant_id,
            token_id=token_id,
            expire_time=datetime.fromtimestamp(exp, UTC),
        )
