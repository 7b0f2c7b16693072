"""The verifier's copy of identity's public keys (JWKS), keyed by `kid`.

Keys come from an async fetch function: over gRPC from identity's `GetJwks` in other
services, or straight from the local key store inside identity. The copy is refreshed
after `max_age`, and refetched when a token names an unknown `kid`, at most once per
`refetch_interval` so that a flood of forged kids cannot hammer identity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from superapp.identity.v1 import identity_service_pb2, identity_service_pb2_grpc

from services.auth.token_format import ALGORITHM, JwkDict
from services.runtime.clock import Clock
from services.runtime.errors import Unavailable

__all__ = ["JwksCache", "JwksFetcher", "grpc_jwks_fetcher"]

_log = logging.getLogger(__name__)

JwksFetcher = Callable[[], Awaitable[Sequence[JwkDict]]]
"""Returns the current public keys; raises when they cannot be had right now."""

# After a failed fetch, try again soon: the keys are needed to serve anything at all.
_RETRY_AFTER_FAILURE = timedelta(seconds=1)


class JwksCache:
    """Public keys by `kid`, parsed once, fetched lazily and cached."""

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        clock: Clock,
        refetch_interval: timedelta = timedelta(seconds=30),
        max_age: timedelta = timedelta(minutes=10),
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._sources: dict[str, JwkDict] = {}
        self._loaded_at: datetime | None = None
        self._refetched_at: datetime | None = None
        self._failed_at: datetime | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Ed25519PublicKey | None:
        """The key named `kid`, or None when identity does not publish it.

        Raises Unavailable when no key set could be fetched yet, or when a refetch for
        an unknown `kid` failed (the token may well be valid; the caller should retry).
        """
        found = self._keys.get(kid)
        if found is not None:
            if self._fresh() or self._lock.locked():
                return found
            async with self._lock:
                if not self._fresh() and self._may_retry():
                    # Best effort: on failure the keys we have stay good.
                    await self._try_load()
                return self._keys.get(kid)
        async with self._lock:
            found = self._keys.get(kid)
            if found is not None:
                return found
            if self._loaded_at is not None and not self._may_refetch():
                return None
            if not self._may_retry():
                raise Unavailable("UNAVAILABLE", "token signing keys are unavailable")
            if self._loaded_at is not None:
                self._refetched_at = self._clock.now()
            if not await self._try_load():
                raise Unavailable("UNAVAILABLE", "token signing keys are unavailable")
            return self._keys.get(kid)

    def knows(self, kid: str) -> bool:
        """Whether `kid` is in the cached set (no fetching)."""
        return kid in self._keys

    async def refresh(self) -> None:
        """Fetch the key set now (e.g. to warm up at start); raises what the fetch raises."""
        async with self._lock:
            self._install(await self._fetch())

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock.now() - self._loaded_at < self._max_age

    def _may_refetch(self) -> bool:
        last = self._refetched_at
        return last is None or self._clock.now() - last >= self._refetch_interval

    def _may_retry(self) -> bool:
        last = self._failed_at
        backoff = min(self._refetch_interval, _RETRY_AFTER_FAILURE)
        return last is None or self._clock.now() - last >= backoff

    async def _try_load(self) -> bool:
        try:
            keys = await self._fetch()
        except Exception as error:  # any failure of the fetch means "not now"
            self._failed_at = self._clock.now()
            _log.warning("cannot fetch the token signing keys: %s", error)
            return False
        self._install(keys)
        return True

    def _install(self, jwks: Sequence[JwkDict]) -> None:
        keys: dict[str, Ed25519PublicKey] = {}
        sources: dict[str, JwkDict] = {}
        for jwk in map(dict, jwks):
            kid = jwk.get("kid", "")
            if not _usable(jwk) or kid in keys:
                _log.warning("ignoring an unusable or duplicate key in the JWKS (kid %r)", kid)
                continue
            previous = self._keys.get(kid)
            if previous is not None and self._sources[kid] == jwk:
                # Parsing a key costs more than verifying a signature with it.
                keys[kid], sources[kid] = previous, jwk
                continue
            try:
                parsed = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            except jwt.PyJWTError as error:
                _log.warning("ignoring a malformed key in the JWKS (kid %r): %s", kid, error)
                continue
            if not isinstance(parsed, Ed25519PublicKey):
                _log.warning("ignoring a key in the JWKS that is not public Ed25519 (kid %r)", kid)
                continue
            keys[kid], sources[kid] = parsed, jwk
        if not keys:
            _log.warning("the JWKS holds no usable key")
        self._keys, self._sources = keys, sources
        self._loaded_at = self._clock.now()
        self._failed_at = None


def _usable(jwk: JwkDict) -> bool:
    return (
        bool(jwk.get("kid"))
        and jwk.get("kty") == "OKP"
        and jwk.get("crv") == "Ed25519"
        and jwk.get("alg", ALGORITHM) == ALGORITHM
        and jwk.get("use", "sig") == "sig"
    )


def grpc_jwks_fetcher(channel: grpc.aio.Channel, *, timeout: float = 5.0) -> JwksFetcher:
    """A fetch function that calls identity's `GetJwks` on `channel` (the caller closes it)."""
    stub = identity_service_pb2_grpc.IdentityServiceStub(channel)

    async def fetch() -> list[JwkDict]:
        response = await stub.GetJwks(identity_service_pb2.GetJwksRequest(), timeout=timeout)
        return [
            {
                name: value
                for name, value in (
                    ("kty", key.kty),
                    ("crv", key.crv),
                    ("x", key.x),
                    ("kid", key.kid),
                    ("alg", key.alg),
                    ("use", key.use),
                )
                if value
            }
            for key in response.keys
        ]

    return fetch
