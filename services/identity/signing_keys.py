"""Identity's Ed25519 token-signing keys: made on first start, kept on disk, rotated.

One JSON file per key, `key-<generation>.json` (mode 0600, in a 0700 directory), holds
the private key (PKCS#8 PEM), its `kid` and when it became the signing key; the highest
generation signs. A file is created by hard-linking a finished temporary file to its
final name, which fails if that name exists, so processes that start or rotate at the
same moment agree on one key. Every read lists the directory again (a few entries), so
a rotation made by one process is used and published by the others at once.

A key that stopped signing stays published until every token it signed has expired
(`retire_after` past its successor's start: access-token TTL plus verifier leeway);
then its file is deleted.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.auth.token_format import ALGORITHM
from services.runtime.clock import Clock

__all__ = ["SigningKey", "SigningKeyError", "SigningKeys", "jwk_thumbprint"]

_log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"key-(\d{8})\.json")


class SigningKeyError(Exception):
    """The key directory or a key file cannot be used; the message names the path."""


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
    private_key: Ed25519PrivateKey
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


class SigningKeys:
    """The key store in one directory: the active key, rotation and the published set."""

    def __init__(self, directory: Path, *, clock: Clock, retire_after: timedelta) -> None:
        """Open `directory` (created 0700 if missing) and make the first key if it has none."""
        if retire_after <= timedelta(0):
            raise ValueError("retire_after must be positive")
        self._directory = directory
        self._clock = clock
        self._retire_after = retire_after
        self._keys: dict[str, SigningKey] = {}
        self._secure_directory()
        self._current()

    @classmethod
    def existing(cls, directory: Path, *, clock: Clock, retire_after: timedelta) -> SigningKeys:
        """Open keys that a running identity made; SigningKeyError if `directory` has none.

        For operator commands, which must act on the service's own keys: opening an empty
        or wrong directory would quietly make a first key nobody serves.
        """
        if not directory.is_dir() or not any(
            _FILE_NAME.fullmatch(path.name) for path in directory.iterdir()
        ):
            raise SigningKeyError(
                f"no signing keys in {directory}: not the directory of a running identity"
            )
        return cls(directory, clock=clock, retire_after=retire_after)

    @property
    def directory(self) -> Path:
        """Where the key files live."""
        return self._directory

    def active(self) -> SigningKey:
        """The key that signs new tokens: the newest one whose activation time has come."""
        keys = self._current()
        now = self._clock.now()
        due = [key for key in keys if key.activate_time <= now]
        return due[-1] if due else keys[0]

    def rotate(self, *, activate_in: timedelta = timedelta(0)) -> SigningKey:
        """Add a new signing key, published at once and signing after `activate_in`.

        Activating it later than verifiers refresh their key sets means none of them ever
        meets its `kid` unannounced. The previous keys stay published until retired.
        """
        newest = self._current()[-1]
        self._create(newest.generation + 1, self._clock.now() + activate_in)
        return self._current()[-1]

    def jwks(self) -> list[dict[str, str]]:
        """The public keys of every key whose tokens may still be valid (RFC 7517 JWKs)."""
        return [dict(key.jwk) for key in self._current()]

    def _current(self) -> list[SigningKey]:
        keys = self._sync()
        if not keys:
            self._create(1, self._clock.now())
            keys = self._sync()
        return keys

    def _secure_directory(self) -> None:
        try:
            self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self._directory.stat().st_mode) != 0o700:
                self._directory.chmod(0o700)
        except OSError as error:
            raise SigningKeyError(
                f"{self._directory}: cannot use as key directory: {error}"
            ) from None

    def _sync(self) -> list[SigningKey]:
        """The live keys by generation, after picking up other processes' changes."""
        try:
            names = {p.name for p in self._directory.iterdir() if _FILE_NAME.fullmatch(p.name)}
        except OSError as error:
            raise SigningKeyError(f"{self._directory}: cannot list keys: {error}") from None
        for gone in self._keys.keys() - names:
            del self._keys[gone]
        for name in names - self._keys.keys():
            key = self._load(self._directory / name)
            if key is not None:
                self._keys[name] = key
        ordered = sorted(self._keys.values(), key=lambda key: key.generation)
        now = self._clock.now()
        live: list[SigningKey] = []
        for key, successor in itertools.pairwise(ordered):
            if now < successor.activate_time + self._retire_after:
                live.append(key)
            else:
                self._retire(key)
        return live + ordered[-1:]

    def _retire(self, key: SigningKey) -> None:
        name = _file_name(key.generation)
        self._keys.pop(name, None)
        # Another process may have deleted it already.
        (self._directory / name).unlink(missing_ok=True)
        _log.info("retired token signing key %s", key.kid)

    def _load(self, path: Path) -> SigningKey | None:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                _log.warning("%s was readable by others (mode %o); now 0600", path, mode)
                path.chmod(0o600)
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None  # retired by another process between listing and reading
        except (OSError, ValueError) as error:
            raise SigningKeyError(f"{path}: cannot read key file: {error}") from None
        try:
            private_key = serialization.load_pem_private_key(
                document["private_key"].encode("ascii"), password=None
            )
            activate_time = datetime.fromisoformat(document["activate_time"])
            if not isinstance(private_key, Ed25519PrivateKey) or activate_time.tzinfo is None:
                raise ValueError("not an Ed25519 key with a time-zone-aware activation time")
            generation = int(path.name.removeprefix("key-").removesuffix(".json"))
            key = SigningKey.from_private_key(generation, private_key, activate_time)
            if key.kid != document["kid"]:
                raise ValueError("kid does not match the key")
        except (KeyError, TypeError, ValueError) as error:
            raise SigningKeyError(f"{path}: malformed key file: {error}") from None
        return key

    def _create(self, generation: int, activate_time: datetime) -> None:
        private_key = Ed25519PrivateKey.generate()
        key = SigningKey.from_private_key(generation, private_key, activate_time)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        document = {
            "kid": key.kid,
            "activate_time": key.activate_time.isoformat(),
            "private_key": pem.decode("ascii"),
        }
        final = self._directory / _file_name(generation)
        # mkstemp creates the file 0600 whatever the umask.
        handle, temporary = tempfile.mkstemp(dir=self._directory, prefix=".key-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(document, file)
                file.flush()
                os.fsync(file.fileno())
            try:
                final.hardlink_to(temporary)
            except FileExistsError:
                return  # another process made this generation first; theirs counts
            self._fsync_directory()
            _log.info("created token signing key %s (generation %d)", key.kid, generation)
        except OSError as error:
            raise SigningKeyError(f"{final}: cannot create key file: {error}") from None
        finally:
            Path(temporary).unlink(missing_ok=True)

    def _fsync_directory(self) -> None:
        descriptor = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _file_name(generation: int) -> str:
    return f"key-{generation:08d}.json"
