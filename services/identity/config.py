"""Identity's settings, from `IDENTITY_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.identity.key_encryption import KeyEncryptionKeys, parse_key_encryption_keys
from services.runtime.client_address import parse_trusted
from services.runtime.settings import Port, ServiceSettings

__all__ = ["IdentitySettings"]

Seconds = Annotated[float, Field(gt=0)]
# A service client id: lower-case letters, digits and hyphens, starting with a letter.
_CLIENT_ID = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


class IdentitySettings(ServiceSettings):
    """Settings of the identity service."""

    model_config = SettingsConfigDict(env_prefix="IDENTITY_", frozen=True, extra="ignore")

    port: Port = 7101
    key_encryption_keys: SecretStr
    """Required. The keys that seal the private signing keys in the database: the
    base64url of 32 random bytes each, comma-separated; the first seals, every one
    opens (so a key-encryption key can be replaced; see the README)."""
    keys_dir: Path | None = None
    """Deprecated: where identity versions before the database kept their signing keys
    (default `<data_dir>/identity-keys`). Read only to import them, once."""
    access_token_ttl_seconds: Annotated[float, Field(ge=30, le=3600)] = 900
    """Lifetime of access tokens: short, since they cannot be revoked."""
    refresh_token_ttl_seconds: Annotated[float, Field(ge=60)] = 30 * 24 * 3600
    """Lifetime of each refresh token; every use rotates it and starts a new lifetime."""
    login_free_failures: Annotated[int, Field(ge=0, le=100)] = 2
    """Failed sign-ins for one email from one client address that cost nothing; each
    one after them imposes a delay on that pair."""
    login_first_delay_seconds: Annotated[float, Field(gt=0, le=3600)] = 1
    """The delay after the first failure past the free ones; each further one doubles it."""
    login_max_delay_seconds: Annotated[float, Field(gt=0, le=24 * 3600)] = 15 * 60
    """The longest delay one (email, client address) pair is refused for."""
    login_failure_reset_seconds: Seconds = 12 * 3600
    """A pair's failures are forgotten this long after its last one."""
    login_address_max_failures: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    """Failed sign-ins from one client address, across all emails, within a window;
    the next attempt from that address is refused (credential stuffing)."""
    login_address_window_seconds: Seconds = 15 * 60
    """The window of `login_address_max_failures`."""
    login_address_block_seconds: Seconds = 15 * 60
    """How long an address past its bound is refused; it then starts a new window."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Peers (addresses or CIDR networks, comma-separated; `*` for any) whose
    `x-forwarded-for` metadata names the client: the BFF. Others are their own client."""
    password_hash_cores: Annotated[float, Field(gt=0, le=8)] = 0.5
    """Share of CPU cores argon2id hashing may use at its allowed rate."""
    password_hash_memory_kib: Annotated[int, Field(ge=8, le=4 * 1024 * 1024)] = 19 * 1024
    """argon2id's memory per hash, in KiB. With `password_hash_iterations` it should be
    one of OWASP's configurations (47104/1, 19456/2, 12288/3, 9216/4, 7168/5); anything
    weaker is for tests, and identity warns at start. Each hash in progress holds this
    much memory. A stored hash made with other parameters is re-made at its next login."""
    password_hash_iterations: Annotated[int, Field(ge=1, le=64)] = 2
    """argon2id's passes over its memory per hash (see `password_hash_memory_kib`)."""
    bootstrap_admin_email: str = ""
    """This account gets the admin role (at sign-up, or at start if it exists): the first admin."""

    service_clients: dict[str, str] = Field(default={}, repr=False)
    """Services that may get system tokens (IssueServiceToken), as JSON: client id to the
    lower-case hex SHA-256 of its secret, e.g. `{"orders": "9f86d0…"}`. Never the secret."""

    @field_validator("service_clients")
    @classmethod
    def _client_digests(cls, clients: dict[str, str]) -> dict[str, str]:
        for client_id, digest in clients.items():
            if not _CLIENT_ID.fullmatch(client_id):
                raise ValueError(f"{client_id!r} is not a client id (a-z, 0-9, -; 1-64)")
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{client_id!r}: expected the lower-case hex SHA-256 of a secret")
        return clients

    @field_validator("key_encryption_keys")
    @classmethod
    def _key_encryption_keys(cls, value: SecretStr) -> SecretStr:
        parse_key_encryption_keys(value.get_secret_value())
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted_peers(cls, value: str) -> str:
        parse_trusted(value)
        return value

    def key_encryption(self) -> KeyEncryptionKeys:
        """The key-encryption keys, ready to seal and open."""
        keys = parse_key_encryption_keys(self.key_encryption_keys.get_secret_value())
        return KeyEncryptionKeys(keys)

    def resolved_keys_dir(self) -> Path:
        """Where an older identity kept its key files (deprecated, import only)."""
        return self.keys_dir or self.data_dir / "identity-keys"
