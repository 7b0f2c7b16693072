"""Issue mini-app access tokens: EdDSA JWTs under identity's signing keys, in the format
documented on `IdentityService.ExchangeAuthorizationCode`.

They are signed with the same keys as users' tokens (so the published JWKS verifies
them, with any JOSE library), but their `typ` is `miniapp+jwt`, their audience the
mini-app, their subject pairwise and they carry no roles: nothing that accepts a
user's token accepts one of these.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import jwt

from services.auth.token_format import ALGORITHM, MINIAPP_TOKEN_TYPE
from services.identity.access_tokens import IssuedToken
from services.identity.signing_keys import SigningKeys
from services.runtime.clock import Clock
from services.runtime.ids import new_id

__all__ = ["MINIAPP_TOKEN_TTL", "MiniAppTokenIssuer"]

MINIAPP_TOKEN_TTL = timedelta(minutes=5)
"""A mini-app token's lifetime: short, as the mini-app gets no refresh token."""


class MiniAppTokenIssuer:
    """Signs mini-app tokens with the active key of `keys`."""

    def __init__(
        self, keys: SigningKeys, issuer: str, clock: Clock, ttl: timedelta = MINIAPP_TOKEN_TTL
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._ttl = int(ttl.total_seconds())

    def issue(
        self, *, client_id: str, subject: str, scopes: Iterable[str], grant_id: str
    ) -> IssuedToken:
        """A token for the mini-app `client_id` acting for `subject` with `scopes`."""
        issued_at = int(self._clock.now().timestamp())
        expires_at = issued_at + self._ttl
        token_id = new_id()
        key = self._keys.active()
        token = jwt.encode(
            {
                "iss": self._issuer,
                "aud": client_id,
                "azp": client_id,
                "client_id": client_id,
                "sub": subject,
                "scope": " ".join(sorted(set(scopes))),
                "gid": grant_id,
                "exp": expires_at,
                "iat": issued_at,
                "jti": token_id,
            },
            key.private_key,
            algorithm=ALGORITHM,
            headers={"typ": MINIAPP_TOKEN_TYPE, "kid": key.kid},
        )
        return IssuedToken(token, datetime.fromtimestamp(expires_at, UTC), token_id)
