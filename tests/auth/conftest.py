"""Real keys in identity's database, a settable clock, an issuer and a verifier that
share them.

Chain: tmp dir → identity's database (SQLite) → SigningKeys → AccessTokenIssuer /
JwksCache (counting fetches) → TokenVerifier.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.auth import DEFAULT_LEEWAY, JwkDict, JwksCache, TokenVerifier
from services.database import Database, open_database
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.key_encryption import KeyEncryptionKeys, parse_key_encryption_keys
from services.identity.signing_keys import SigningKeys
from tests.conftest import ROOT
from tests.identity.conftest import KEY_ENCRYPTION_KEY

ISSUER = "https://identity.superapp.test"
AUDIENCE = "superapp-test"
TTL = timedelta(minutes=15)
RETIRE_AFTER = TTL + DEFAULT_LEEWAY
REFETCH_INTERVAL = timedelta(seconds=30)
IDENTITY_MIGRATIONS = ROOT / "services" / "identity" / "migrations"
[KEK] = parse_key_encryption_keys(KEY_ENCRYPTION_KEY)
ENCRYPTION = KeyEncryptionKeys([KEK])
"""The tests' key-encryption key, ready to use."""


class FakeClock:
    """A clock that moves only when told to; starts at the real time so PyJWT agrees."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


class CountingFetch:
    """The local JWKS fetch identity uses, counting how often a verifier asks."""

    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys
        self.calls = 0
        self.failing = False

    async def __call__(self) -> list[JwkDict]:
        self.calls += 1
        if self.failing:
            raise ConnectionError("identity is away")
        return list(self.keys.jwks())


@pytest.fixture
def clock() -> FakeClock:
    """The time every part of the test sees."""
    return FakeClock()


@pytest.fixture
async def identity_database(tmp_path: Path) -> AsyncIterator[Database]:
    """Identity's database, migrated, in a SQLite file."""
    database = await open_database(
        f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}",
        IDENTITY_MIGRATIONS,
        setting="IDENTITY_DATABASE_URL",
    )
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def keys(identity_database: Database, clock: FakeClock) -> SigningKeys:
    """A fresh key store with its first key."""
    return await SigningKeys.open(
        identity_database, ENCRYPTION, clock=clock, retire_after=RETIRE_AFTER
    )


@pytest.fixture
def issuer(keys: SigningKeys, clock: FakeClock) -> AccessTokenIssuer:
    """Identity's token issuer over `keys`."""
    return AccessTokenIssuer(keys, ISSUER, AUDIENCE, TTL, clock)


@pytest.fixture
def fetch(keys: SigningKeys) -> CountingFetch:
    """The key set source the verifier's cache uses."""
    return CountingFetch(keys)


@pytest.fixture
def verifier(fetch: CountingFetch, clock: FakeClock) -> TokenVerifier:
    """A verifier for `issuer`'s tokens, its JWKS fetched through `fetch`."""
    jwks = JwksCache(fetch, clock=clock, refetch_interval=REFETCH_INTERVAL)
    return TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, clock=clock)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS built by hand, so any header, claims and signature can be tried."""
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The decoded header and claims of `token`, unverified."""
    header, claims, _ = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(claims))
