"""The verifier's key cache: refetch on unknown kids, rate-limited, refreshed by age."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.auth import JwksCache, TokenVerifier
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.signing_keys import SigningKeys
from services.runtime.errors import Unauthenticated, Unavailable
from services.runtime.ids import new_id
from tests.auth.conftest import (
    AUDIENCE,
    ISSUER,
    REFETCH_INTERVAL,
    RETIRE_AFTER,
    CountingFetch,
    FakeClock,
    forge,
)


def _forged_kid_token(keys: SigningKeys, clock: FakeClock) -> str:
    now = int(clock.now().timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": new_id(), "exp": now + 60, "iat": now}
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": new_id()}
    return forge(
        header, claims | {"jti": new_id(), "roles": ["user"]}, keys.active().private_key.sign
    )


async def test_a_flood_of_unknown_kids_refetches_once_per_interval(
    issuer: AccessTokenIssuer,
    keys: SigningKeys,
    verifier: TokenVerifier,
    fetch: CountingFetch,
    clock: FakeClock,
) -> None:
    await verifier.verify(issuer.issue(new_id(), ["user"]).token)
    assert fetch.calls == 1
    flood = [verifier.verify(_forged_kid_token(keys, clock)) for _ in range(200)]
    results = await asyncio.gather(*flood, return_exceptions=True)
    assert all(isinstance(result, Unauthenticated) for result in results)
    assert fetch.calls == 2
    clock.advance(REFETCH_INTERVAL - timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="unknown token signing key"):
        await verifier.verify(_forged_kid_token(keys, clock))
    assert fetch.calls == 2
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="unknown token signing key"):
        await verifier.verify(_forged_kid_token(keys, clock))
    assert fetch.calls == 3


async def test_a_new_key_is_fetched_when_its_first_token_arrives(
    issuer: AccessTokenIssuer, keys: SigningKeys, verifier: TokenVerifier, fetch: CountingFetch
) -> None:
    await verifier.verify(issuer.issue(new_id(), ["user"]).token)
    await keys.rotate()
    await verifier.verify(issuer.issue(new_id(), ["user"]).token)
    assert fetch.calls == 2


async def test_the_set_is_refreshed_after_its_max_age(
    keys: SigningKeys, fetch: CountingFetch, clock: FakeClock
) -> None:
    cache = JwksCache(fetch, clock=clock, max_age=timedelta(minutes=10))
    kid = keys.active().kid
    assert await cache.key(kid) is not None
    assert await cache.key(kid) is not None
    assert fetch.calls == 1
    clock.advance(timedelta(minutes=10))
    assert await cache.key(kid) is not None
    assert fetch.calls == 2


async def test_a_failed_refresh_keeps_the_known_keys(
    keys: SigningKeys, fetch: CountingFetch, clock: FakeClock
) -> None:
    cache = JwksCache(fetch, clock=clock, max_age=timedelta(minutes=10))
    kid = keys.active().kid
    await cache.key(kid)
    fetch.failing = True
    clock.advance(timedelta(minutes=11))
    assert await cache.key(kid) is not None
    assert fetch.calls == 2


async def test_no_keys_yet_is_unavailable_not_unauthenticated(
    keys: SigningKeys, fetch: CountingFetch, clock: FakeClock
) -> None:
    cache = JwksCache(fetch, clock=clock)
    fetch.failing = True
    with pytest.raises(Unavailable) as caught:
        await cache.key(keys.active().kid)
    assert caught.value.reason == "UNAVAILABLE"
    with pytest.raises(Unavailable):
        await cache.key(keys.active().kid)
    assert fetch.calls == 1  # failures are retried after a pause, not per request
    fetch.failing = False
    clock.advance(timedelta(seconds=1))
    assert await cache.key(keys.active().kid) is not None


async def test_keys_that_are_not_ed25519_signature_keys_are_ignored(
    keys: SigningKeys, clock: FakeClock
) -> None:
    good = keys.jwks()[0]

    async def fetch() -> list[dict[str, str]]:
        return [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            good | {"kid": "for-encryption", "use": "enc"},
            good | {"kid": "other-alg", "alg": "HS256"},
            good | {"kid": "bad-x", "x": "AAAA"},
            good,
        ]

    cache = JwksCache(fetch, clock=clock)
    for kid in ("hmac", "for-encryption", "other-alg", "bad-x"):
        assert await cache.key(kid) is None, kid
    assert await cache.key(good["kid"]) is not None


async def test_tokens_of_a_rotated_key_verify_until_the_key_retires(
    issuer: AccessTokenIssuer,
    keys: SigningKeys,
    verifier: TokenVerifier,
    fetch: CountingFetch,
    clock: FakeClock,
) -> None:
    old_token = issuer.issue(new_id(), ["user"]).token
    await verifier.verify(old_token)
    await keys.rotate()
    await verifier.verify(issuer.issue(new_id(), ["user"]).token)
    await verifier.verify(old_token)
    clock.advance(RETIRE_AFTER - timedelta(seconds=1))
    await verifier.verify(old_token)

    def lenient() -> TokenVerifier:
        """A fresh verifier that ignores expiry, to show the key itself is gone."""
        jwks = JwksCache(fetch, clock=clock)
        leeway = timedelta(days=1)
        return TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock, leeway=leeway)

    await lenient().verify(old_token)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated):
        await verifier.verify(old_token)
    with pytest.raises(Unauthenticated, match="unknown token signing key"):
        await lenient().verify(old_token)
