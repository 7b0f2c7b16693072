"""Verify an access token locally and turn it into the `Caller` it proves.

Every check that fails raises Unauthenticated (reason UNAUTHENTICATED) with a short
message that names the check, never the token. The header must say EdDSA and the
signature is checked with an Ed25519 public key and nothing else, so `alg: none`,
HS256 keyed with the public key and RS256 are refused whatever the header claims.

This runs on every RPC, so the signature (the expensive part) is checked once per
token: verified tokens are remembered until they expire, bounded in number.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature

from services.auth.caller import Caller
from services.auth.jwks import JwksCache
from services.auth.roles import KNOWN_ROLES
from services.auth.token_format import ALGORITHM, TOKEN_TYPE, is_canonical_uuid
from services.runtime.clock import Clock
from services.runtime.errors import Unauthenticated

__all__ = ["DEFAULT_LEEWAY", "MAX_TOKEN_LENGTH", "TokenVerifier"]

DEFAULT_LEEWAY = timedelta(seconds=30)
"""Clock skew tolerated on `exp` and `iat` between identity and a verifier."""

MAX_TOKEN_LENGTH = 4096
"""Longer strings are refused before any parsing; ours are about 450 characters."""

# RFC 9068 section 4: compare case-insensitively, with or without the media-type prefix.
_TOKEN_TYPES = frozenset({TOKEN_TYPE, f"application/{TOKEN_TYPE}"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def _reject(message: str) -> Unauthenticated:
    return Unauthenticated("UNAUTHENTICATED", message)


def _decode(segment: str) -> bytes:
    """Strict base64url without padding: one encoding per value, so no malleable tokens."""
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise _reject("malformed access token")
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error:
        raise _reject("malformed access token") from None
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        raise _reject("malformed access token")
    return data


def _json_object(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_decode(segment))
    except ValueError:
        raise _reject("malformed access token") from None
    if not isinstance(value, dict):
        raise _reject("malformed access token")
    return value


class TokenVerifier:
    """Checks access tokens against the published keys, issuer, audience and clock."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        clock: Clock,
        leeway: timedelta = DEFAULT_LEEWAY,
        remembered_tokens: int = 4096,
    ) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._clock = clock
        self._leeway = leeway.total_seconds()
        self._capacity = max(0, remembered_tokens)
        # token → (caller, exp, kid); insertion order gives first-in-first-out eviction.
        self._verified: dict[str, tuple[Caller, float, str]] = {}

    async def verify(self, token: str) -> Caller:
        """The caller `token` proves; Unauthenticated if it proves nothing."""
        remembered = self._verified.get(token)
        if remembered is not None:
            caller, expires, kid = remembered
            if self._clock.now().timestamp() < expires + self._leeway and self._jwks.knows(kid):
                return caller
            del self._verified[token]
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise _reject("malformed access token")
        header_segment, payload_segment, signature_segment = token.split(".")
        kid = self._check_header(_json_object(header_segment))
        key = await self._jwks.key(kid)
        if key is None:
            raise _reject("unknown token signing key")
        signature = _decode(signature_segment)
        try:
            key.verify(signature, f"{header_segment}.{payload_segment}".encode("ascii"))
        except InvalidSignature:
            raise _reject("invalid token signature") from None
        claims = _json_object(payload_segment)
        caller, expires = self._check_claims(claims)
        if self._capacity:
            if len(self._verified) >= self._capacity:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = (caller, expires, kid)
        return caller

    def _check_header(self, header: dict[str, Any]) -> str:
        """The header's `kid`, once the header is one we could ever accept."""
        if header.get("alg") != ALGORITHM:
            raise _reject("token algorithm not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _TOKEN_TYPES:
            raise _reject("not an access token")
        if "crit" in header or "b64" in header:
            raise _reject("token header extensions not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise _reject("token key id missing")
        return kid

    def _check_claims(self, claims: dict[str, Any]) -> tuple[Caller, float]:
        now = self._clock.now().timestamp()
        exp, iat, nbf = _time(claims, "exp"), _time(claims, "iat"), _time(claims, "nbf", 0.0)
        if now >= exp + self._leeway:
            raise _reject("token expired")
        if iat > now + self._leeway or nbf > now + self._leeway:
            raise _reject("token not valid yet")
        if claims.get("iss") != self._issuer:
            raise _reject("wrong token issuer")
        audience = claims.get("aud")
        if audience != self._audience and not (
            isinstance(audience, list) and self._audience in audience
        ):
            raise _reject("wrong token audience")
        subject, token_id = claims.get("sub"), claims.get("jti")
        if not (is_canonical_uuid(subject) and is_canonical_uuid(token_id)):
            raise _reject("malformed token subject or id")
        caller = Caller(user_id=subject, roles=_roles(claims.get("roles")), token_id=token_id)
        return caller, exp


def _roles(value: object) -> frozenset[str]:
    if not (isinstance(value, list) and value and all(isinstance(r, str) for r in value)):
        raise _reject("malformed token roles")
    roles = frozenset(value)
    if not roles <= KNOWN_ROLES:
        raise _reject("malformed token roles")
    return roles


def _time(claims: dict[str, Any], name: str, default: float | None = None) -> float:
    value = claims.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _reject("token times missing")
    return float(value)
