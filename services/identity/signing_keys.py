"""Identity's Ed25519 token-signing keys: rows of its database, shared by every replica.

Each key is a row of `signing_keys` (`models.SigningKeyRow`): its generation, `kid`,
public JWK and activation time in clear, the private key sealed under the configured
key-encryption key (`key_encryption`). The private key is opened only in memory.

Every replica holds the rows, opened, and reads the table again every second or so
(`refresher`): a token is signed without a database read, and a rotation made through
any replica, or by the `rotate-keys` command from anywhere, is used and published by
every replica within seconds. The newest key whose activation time has come signs.

The first start finds the table empty and makes generation 1, or imports the key files
of an identity version that kept them on disk. Replicas starting together insert if
absent by generation and read back, so they agree on one key; a rotation inserts the
next generation the same way.

A key that stopped signing stays published until every token it signed has expired
(`retire_after` past its successor's activation: access-token TTL plus verifier
leeway); then the first replica to notice deletes its row.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Table, delete, select, update

from services.auth.token_format import ALGORITHM
from services.database.engine import Database
from services.database.insert_if_absent import insert_if_absent
from services.identity.key_encryption import KeyEncryptionError, KeyEncryptionKeys, SealedKey
from services.identity.models import SigningKeyRow
from services.runtime.clock import Clock
from services.runtime.sweeper import Sweeper

if TYPE_CHECKING:
    from services.identity.key_files import KeyFiles

__all__ = ["NoSigningKeys", "SigningKey", "SigningKeyError", "SigningKeys", "jwk_thumbprint"]

_log = logging.getLogger(__name__)

_TABLE: Table = SigningKeyRow.__table__  # type: ignore[assignment]
_ROWS = select(
    _TABLE.c.generation,
    _TABLE.c.kid,
    _TABLE.c.public_jwk,
    _TABLE.c.kek_id,
    _TABLE.c.sealed_private_key,
    _TABLE.c.activate_time,
).order_by(_TABLE.c.generation)


class SigningKeyError(Exception):
    """The signing keys cannot be used: one does not open, or a key file is bad."""


class NoSigningKeys(SigningKeyError):
    """The database holds no signing keys, where an operator command expected some."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(x: str) -> str:
    """The RFC 7638 thumbprint (SHA-256, base64url) of the Ed25519 public key `x`."""
    members = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(members.encode("ascii")).digest())


@dataclass(frozen=True, slots=True, eq=False)
class SigningKey:
    """One key pair: what signs tokens, and the public JWK that verifies them."""

    generation: int
    kid: str
    activate_time: datetime
    private_key: Ed25519PrivateKey = field(repr=False)
    jwk: dict[str, str]
    """The public key as an RFC 7517 JWK (kty, crv, x, kid, alg, use)."""

    @classmethod
    def from_private_key(
        cls, generation: int, private_key: Ed25519PrivateKey, activate_time: datetime
    ) -> SigningKey:
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        x = _b64url(raw)
        kid = jwk_thumbprint(x)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}
        return cls(generation, kid, activate_time, private_key, jwk)

    def private_bytes(self) -> bytes:
        """The raw 32-byte private key, to be sealed at once."""
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class _Stored:
    """A row of `signing_keys`, as read."""

    generation: int
    kid: str
    public_jwk: str
    kek_id: str
    sealed_private_key: bytes = field(repr=False)
    activate_time: datetime


@dataclass(frozen=True, slots=True)
class _Published:
    generation: int
    activate_time: datetime
    jwk: dict[str, str]


class SigningKeys:
    """The keys in identity's database as this process sees them; see the module doc.

    Open with `open` (a serving identity) or `existing` (an operator command).
    """

    def __init__(
        self,
        database: Database,
        encryption: KeyEncryptionKeys,
        *,
        clock: Clock,
        retire_after: timedelta,
    ) -> None:
        if retire_after <= timedelta(0):
            raise ValueError("retire_after must be positive")
        self._database = database
        self._encryption = encryption
        self._clock = clock
        self._retire_after = retire_after
        self._published: tuple[_Published, ...] = ()
        self._signers: tuple[SigningKey, ...] = ()
        self._reported: set[str] = set()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        database: Database,
        encryption: KeyEncryptionKeys,
        *,
        clock: Clock,
        retire_after: timedelta,
        key_files: KeyFiles | None = None,
    ) -> SigningKeys:
        """The keys of a serving identity, made (or imported from `key_files`) if there
        are none yet; keys sealed under an older key-encryption key are sealed again.

        SigningKeyError if a key does not open: a new key in its place would quietly
        refuse every token the old one signed.
        """
        keys = cls(database, encryption, clock=clock, retire_after=retire_after)
        if not await keys._reload(strict=True):
            imported = await keys._import(key_files) if key_files is not None else 0
            if not imported:
                await keys._create(1, clock.now())
            await keys._reload(strict=True)
        await keys.reseal()
        return keys

    @classmethod
    async def existing(
        cls,
        database: Database,
        encryption: KeyEncryptionKeys,
        *,
        clock: Clock,
        retire_after: timedelta,
    ) -> SigningKeys:
        """Keys a running identity made; SigningKeyError if there are none, or one does
        not open. For operator commands, which must act on the service's own keys:
        pointed at the wrong database, making a first key nobody serves would hide it."""
        keys = cls(database, encryption, clock=clock, retire_after=retire_after)
        if not await keys._reload(strict=True):
            raise NoSigningKeys("no signing keys: not the database of a running identity")
        return keys

    def active(self) -> SigningKey:
        """The key that signs new tokens: the newest one whose activation time has come.

        No database read: the keys as last read (see `refresh`).
        """
        signers = self._signers
        if not signers:
            raise SigningKeyError("no signing key opens with the key-encryption keys here")
        now = self._clock.now()
        active = signers[0]
        for key in signers:
            if key.activate_time <= now:
                active = key
        return active

    def jwks(self) -> list[dict[str, str]]:
        """The public keys of every key whose tokens may still be valid (RFC 7517 JWKs)."""
        published = self._published
        now = self._clock.now()
        live = [
            key
            for key, successor in itertools.pairwise(published)
            if now < successor.activate_time + self._retire_after
        ]
        return [dict(key.jwk) for key in (*live, *published[-1:])]

    async def refresh(self) -> int:
        """Read the table again: other replicas' rotations, retirement. Returns 0 (work
        done, for a `Sweeper`). A key that no configured key-encryption key opens is
        published but does not sign here, and is reported once."""
        await self._reload(strict=False)
        return 0

    def refresher(self, *, interval_seconds: float = 1.0) -> Sweeper:
        """A background task that calls `refresh` every `interval_seconds`."""
        return Sweeper(
            "signing-keys-refresh", self.refresh, batch=1, interval_seconds=interval_seconds
        )

    async def rotate(self, *, activate_in: timedelta = timedelta(0)) -> SigningKey:
        """Add a new signing key, published at once and signing after `activate_in`.

        Activating it later than verifiers refresh their key sets means none of them ever
        meets its `kid` unannounced. The previous keys stay published until retired. A
        rotation made elsewhere at the same moment wins or loses whole: either way the
        key returned is the one stored.
        """
        await self._reload(strict=False)
        generation = self._published[-1].generation + 1 if self._published else 1
        await self._create(generation, self._clock.now() + activate_in)
        await self._reload(strict=False)
        for key in self._signers:
            if key.generation == generation:
                return key
        raise SigningKeyError(f"generation {generation} was stored but does not open here")

    async def reseal(self) -> int:
        """Seal again, under the first key-encryption key, every key an older one sealed;
        how many were. SigningKeyError if one does not open."""
        sealing_id = self._encryption.sealing_id
        stale = [row for row in await self._read() if row.kek_id != sealing_id]
        count = 0
        for row in stale:
            key = self._open(row)
            sealed = self._encryption.seal(key.kid, key.private_bytes())
            async with self._database.write() as session:
                # Another replica may have sealed it again already; either seal is good.
                done = await session.execute(
                    update(_TABLE)
                    .where(_TABLE.c.generation == row.generation, _TABLE.c.kek_id == row.kek_id)
                    .values(sealed_private_key=sealed.ciphertext, kek_id=sealed.kek_id)
                )
            count += done.rowcount  # type: ignore[attr-defined]
        if count:
            _log.info(
                "sealed %d token signing keys again under key-encryption key %s", count, sealing_id
            )
        return count

    def sealing_report(self) -> str:
        """Which key-encryption key seals the keys, for an operator."""
        return (
            f"{len(self._published)} signing keys, sealed with key-encryption key "
            f"{self._encryption.sealing_id}"
        )

    async def _import(self, key_files: KeyFiles) -> int:
        keys = await asyncio.to_thread(key_files.read)
        if not keys:
            return 0
        stored = await self._insert(keys)
        _log.info(
            "imported %d token signing keys (generations %s) from %s; they are kept in "
            "the database now and that directory is no longer read",
            stored,
            ", ".join(str(key.generation) for key in keys),
            key_files.directory,
        )
        return len(keys)

    async def _create(self, generation: int, activate_time: datetime) -> None:
        """A new key of `generation`, unless another process made that generation first."""
        key = SigningKey.from_private_key(generation, Ed25519PrivateKey.generate(), activate_time)
        if await self._insert([key]):
            _log.info(
                "created token signing key %s (generation %d), signing from %s",
                key.kid,
                generation,
                activate_time.isoformat(),
            )

    async def _insert(self, keys: Sequence[SigningKey]) -> int:
        """Store `keys`, each unless its generation exists; how many were stored."""
        now = self._clock.now()
        stored = 0
        async with self._database.write() as session:
            for key in keys:
                sealed = self._encryption.seal(key.kid, key.private_bytes())
                result = await session.execute(
                    insert_if_absent(self._database, _TABLE).values(
                        generation=key.generation,
                        kid=key.kid,
                        public_jwk=json.dumps(key.jwk, separators=(",", ":"), sort_keys=True),
                        sealed_private_key=sealed.ciphertext,
                        kek_id=sealed.kek_id,
                        activate_time=key.activate_time,
                        create_time=now,
                    )
                )
                stored += result.rowcount  # type: ignore[attr-defined]
        return stored

    async def _reload(self, *, strict: bool) -> bool:
        """Read the keys into memory, retiring rows past their time; whether there are any.

        `strict`: a key that does not open is an error, not a report.
        """
        async with self._lock:
            rows = await self._retire(await self._read())
            known = {key.generation: key for key in self._signers}
            published: list[_Published] = []
            signers: list[SigningKey] = []
            for row in rows:
                key = known.get(row.generation)
                try:
                    if key is None or key.kid != row.kid:
                        key = self._open(row)
                except SigningKeyError as error:
                    if strict:
                        raise
                    if row.kid not in self._reported:
                        self._reported.add(row.kid)
                        _log.error("%s; it does not sign here", error)
                    # Its public half is in clear: verifiers may still meet its tokens.
                    with contextlib.suppress(SigningKeyError):
                        published.append(_Published(row.generation, row.activate_time, _jwk(row)))
                    continue
                published.append(_Published(key.generation, key.activate_time, key.jwk))
                signers.append(key)
            self._published, self._signers = tuple(published), tuple(signers)
            return bool(rows)

    async def _read(self) -> list[_Stored]:
        async with self._database.read() as session:
            return [_Stored(*row) for row in await session.execute(_ROWS)]

    async def _retire(self, rows: Sequence[_Stored]) -> Sequence[_Stored]:
        now = self._clock.now()
        due = [
            row
            for row, successor in itertools.pairwise(rows)
            if now >= successor.activate_time + self._retire_after
        ]
        if not due:
            return rows
        generations = {row.generation for row in due}
        async with self._database.write() as session:
            result = await session.execute(
                delete(_TABLE).where(_TABLE.c.generation.in_(generations))
            )
        if result.rowcount:  # type: ignore[attr-defined]
            # Another replica may have deleted some of them first.
            _log.info("retired token signing keys %s", ", ".join(row.kid for row in due))
        return [row for row in rows if row.generation not in generations]

    def _open(self, row: _Stored) -> SigningKey:
        name = f"signing key {row.kid} (generation {row.generation})"
        try:
            raw = self._encryption.open(row.kid, SealedKey(row.kek_id, row.sealed_private_key))
            key = SigningKey.from_private_key(
                row.generation, Ed25519PrivateKey.from_private_bytes(raw), row.activate_time
            )
        except (KeyEncryptionError, ValueError) as error:
            raise SigningKeyError(f"{name}: {error}") from None
        if key.kid != row.kid or key.jwk != _jwk(row):
            raise SigningKeyError(f"{name}: the private key does not match the public key")
        return key


def _jwk(row: _Stored) -> dict[str, str]:
    try:
        jwk = json.loads(row.public_jwk)
    except ValueError:
        jwk = None
    if not isinstance(jwk, dict):
        raise SigningKeyError(f"signing key {row.kid}: its public key is not a JWK")
    return {str(name): str(value) for name, value in jwk.items()}
