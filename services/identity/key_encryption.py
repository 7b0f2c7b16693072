"""The key-encryption keys (KEKs) that seal identity's private signing keys at rest.

`IDENTITY_KEY_ENCRYPTION_KEYS` lists them, comma-separated, each the base64url of 32
random bytes. The first seals; every one opens, so a KEK can be replaced without a
moment in which a replica cannot read the keys (see the README). A sealed key is
AES-256-GCM with a random 96-bit nonce and the key's `kid` as associated data, so a
ciphertext moved to another key's row does not open. Each seal records which KEK made
it by a short id (a digest of the KEK, which tells nothing of a 256-bit random key), so
keys under an older KEK are found without trial decryption and an error can name the
KEK that is missing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEK_BYTES",
    "KeyEncryptionError",
    "KeyEncryptionKeys",
    "SealedKey",
    "kek_id",
    "parse_key_encryption_keys",
]

KEK_BYTES = 32
"""The length of a key-encryption key (AES-256)."""
_NONCE_BYTES = 12
# base64url of 32 bytes: 43 characters, then at most the one padding character.
_ENCODED_KEK = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]=?")
_ID_CONTEXT = b"superapp identity key-encryption key id\x00"


class KeyEncryptionError(Exception):
    """A sealed key that the configured key-encryption keys do not open."""


def parse_key_encryption_keys(value: str) -> list[bytes]:
    """The KEKs of a comma-separated list of base64url-encoded 32-byte keys.

    Raises ValueError with a message that never repeats any part of `value`.
    """
    entries = [entry.strip() for entry in value.split(",")]
    if entries == [""]:
        raise ValueError("must list at least one key")
    keys: list[bytes] = []
    for position, entry in enumerate(entries, 1):
        if not _ENCODED_KEK.fullmatch(entry):
            raise ValueError(
                f"entry {position} is not the base64url of {KEK_BYTES} bytes "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        key = base64.urlsafe_b64decode(entry.rstrip("=") + "=")
        if key in keys:
            raise ValueError(f"entry {position} repeats an earlier key")
        keys.append(key)
    return keys


def kek_id(key: bytes) -> str:
    """The public name of a key-encryption key: 16 hex digits of a digest of it."""
    return hashlib.sha256(_ID_CONTEXT + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A private key as it is stored: which KEK sealed it, and nonce + ciphertext + tag."""

    kek_id: str
    ciphertext: bytes


class KeyEncryptionKeys:
    """Seals with the first key-encryption key, opens with whichever one sealed."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(key) != KEK_BYTES for key in keys):
            raise ValueError(f"need at least one key of {KEK_BYTES} bytes")
        self._ciphers = {kek_id(key): AESGCM(key) for key in keys}
        self._sealing_id = kek_id(keys[0])

    @property
    def sealing_id(self) -> str:
        """The id of the KEK that seals (the first configured)."""
        return self._sealing_id

    @property
    def ids(self) -> list[str]:
        """The ids of every configured KEK, sealing one first."""
        return list(self._ciphers)

    def seal(self, kid: str, plaintext: bytes) -> SealedKey:
        """`plaintext` encrypted under the sealing KEK, bound to `kid`."""
        nonce = os.urandom(_NONCE_BYTES)
        cipher = self._ciphers[self._sealing_id]
        return SealedKey(
            self._sealing_id, nonce + cipher.encrypt(nonce, plaintext, kid.encode("ascii"))
        )

    def open(self, kid: str, sealed: SealedKey) -> bytes:
        """The plaintext of `sealed`; KeyEncryptionError if no configured KEK opens it."""
        cipher = self._ciphers.get(sealed.kek_id)
        if cipher is None:
            raise KeyEncryptionError(
                f"sealed with key-encryption key {sealed.kek_id}, which is not configured "
                f"(configured: {', '.join(self._ciphers)})"
            )
        nonce, ciphertext = sealed.ciphertext[:_NONCE_BYTES], sealed.ciphertext[_NONCE_BYTES:]
        try:
            return cipher.decrypt(nonce, ciphertext, kid.encode("ascii"))
        except InvalidTag:
            raise KeyEncryptionError(
                f"does not open with key-encryption key {sealed.kek_id}: the stored key was altered"
            ) from None
