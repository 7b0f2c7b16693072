"""Issue access tokens: EdDSA-signed JWTs in the format documented on IdentityService."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from services.auth.roles import Role
from services.auth.token_format import ALGORITHM, TOKEN_TYPE, is_canonical_uuid
from services.identity.signing_keys import SigningKeys
from services.runtime.clock import Clock
from services.runtime.ids import new_id

__all__ = ["AccessTokenIssuer", "IssuedToken"]

_ROLE_ORDER = {role.value: index for index, role in enumerate(Role)}


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and what the caller needs to hand it out."""

    token: str
    expire_time: datetime
    """The token's `exp`, to the second."""
    token_id: str
    """The token's `jti`."""


class AccessTokenIssuer:
    """Signs access tokens with the active key of `keys`."""

    def __init__(
        self, keys: SigningKeys, issuer: str, audience: str, ttl: timedelta, clock: Clock
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = int(ttl.total_seconds())
        self._clock = clock

    @property
    def ttl(self) -> timedelta:
        """How long a token is valid after it is issued."""
        return timedelta(seconds=self._ttl)

    def issue(self, user_id: str, roles: Iterable[str]) -> IssuedToken:
        """A token for `user_id` (a canonical UUID) holding `roles` (at least one known name)."""
        if not is_canonical_uuid(user_id):
            raise ValueError("user_id must be a canonical UUID")
        names = sorted(set(roles), key=lambda role: _ROLE_ORDER.get(role, len(_ROLE_ORDER)))
        if not names or any(role not in _ROLE_ORDER for role in names):
            raise ValueError(f"roles must be a non-empty set of {list(_ROLE_ORDER)}")
        issued_at = int(self._clock.now().timestamp())
        expires_at = issued_at + self._ttl
        token_id = new_id()
        key = self._keys.active()
        token = jwt.encode(
            {
                "iss": self._issuer,
                "aud": self._audience,
                "sub": user_id,
                "exp": expires_at,
                "iat": issued_at,
                "jti": token_id,
                "roles": names,
            },
            key.private_key,
            algorithm=ALGORITHM,
            headers={"typ": TOKEN_TYPE, "kid": key.kid},
        )
        return IssuedToken(token, datetime.fromtimestamp(expires_at, UTC), token_id)
