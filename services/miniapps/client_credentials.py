"""OAuth client ids and secrets of mini-apps' backends.

A secret is 32 bytes from the OS CSPRNG (256 bits). Only its SHA-256 is stored: a slow
password hash such as identity's argon2id exists to make guessing low-entropy passwords
expensive, and nobody guesses 256 random bits however fast each guess is, so argon2
would only cost CPU (~50 ms and 19 MiB per token request) for no strength. Identity
stores its service clients' secrets the same way. Digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["ClientCredentials", "new_credentials", "new_secret", "secret_digest", "secret_matches"]

_CLIENT_PREFIX = "ma_"
_SECRET_PREFIX = "mas_"  # noqa: S105  (a prefix, not a secret)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """A new client's id and its secret, which is shown once and then forgotten."""

    client_id: str
    client_secret: str


def new_secret() -> str:
    """A new client secret: `mas_` and 43 base64url characters (32 random bytes)."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


def new_credentials() -> ClientCredentials:
    """A new client id (`ma_` and 32 hex digits, unguessable but not secret) and secret."""
    return ClientCredentials(_CLIENT_PREFIX + secrets.token_hex(16), new_secret())


def secret_digest(secret: str) -> str:
    """What is stored of `secret`: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_digest: str) -> bool:
    """Whether `secret` is the one whose digest was stored, in constant time."""
    return hmac.compare_digest(secret_digest(secret), stored_digest)
