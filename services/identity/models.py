"""Identity's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.database.idempotency import idempotency_table
from services.database.schema import UtcDateTime, new_metadata
from services.database.service_secrets import service_secrets_table
from services.eventbus.schema import EventTables, event_tables

__all__ = [
    "EVENT_TABLES",
    "IDEMPOTENCY_KEYS",
    "OAUTH_CLIENTS",
    "OAUTH_CODES",
    "OAUTH_GRANTS",
    "SERVICE_SECRETS",
    "Base",
    "LoginAddressFailures",
    "LoginPairFailures",
    "RefreshToken",
    "SigningKeyRow",
    "User",
    "UserFields",
    "UserRecord",
]


class Base(DeclarativeBase):
    """Declarative base of identity's own tables."""

    metadata = new_metadata()


EVENT_TABLES: EventTables = event_tables(Base.metadata)
"""The event bus's outbox and inbox, in this service's own database."""


class User(Base):
    """An account: the single source of truth for who a user is."""

    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(String(100))
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())
    update_time: Mapped[datetime] = mapped_column(UtcDateTime())


class UserFields(Protocol):
    """What callers read of a user: the mapped row, or a plain record from a fast look-up."""

    @property
    def user_id(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def roles(self) -> str: ...
    @property
    def create_time(self) -> datetime: ...
    @property
    def update_time(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as read by `Database.lookup`, detached from any session."""

    user_id: str
    email: str
    display_name: str
    roles: str
    create_time: datetime
    update_time: datetime


class RefreshToken(Base):
    """One opaque refresh token, stored only as its SHA-256 digest.

    Tokens of one sign-in form a family: each use rotates the token, and presenting a
    rotated one again revokes the whole family (RFC 6819 §5.2.2.3).
    """

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime())
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())


class LoginPairFailures(Base):
    """Failed sign-ins for one email from one client address, whether or not an account
    has that email. The key is a digest of both, so the table lists neither."""

    __tablename__ = "login_pair_failures"

    pair_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer())
    """Failures since the last success (or since they were forgotten), counting
    attempts still being checked."""
    blocked_until: Mapped[datetime] = mapped_column(UtcDateTime())
    """Sign-ins of this pair are refused until then."""
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    """From then on the failures are forgotten and the row may be pruned."""


class LoginAddressFailures(Base):
    """Failed sign-ins from one client address across all emails, in a fixed window.

    The key is a digest of the address (an IPv6 address by its /64 network).
    """

    __tablename__ = "login_address_failures"

    address_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer())
    window_start: Mapped[datetime] = mapped_column(UtcDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    """Every sign-in from the address is refused until then."""
    expire_time: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    """From then on the row says nothing any more and may be pruned."""


class SigningKeyRow(Base):
    """One Ed25519 token-signing key; the highest generation whose time has come signs.

    The private key is stored only sealed (AES-256-GCM under a key-encryption key from
    the environment, see `services.identity.key_encryption`); the public half in clear.
    """

    __tablename__ = "signing_keys"

    generation: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=False)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    """The RFC 7638 thumbprint of the public key."""
    public_jwk: Mapped[str] = mapped_column(Text())
    """The public key as an RFC 7517 JWK, in JSON."""
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary())
    """Nonce, ciphertext and tag of the raw 32-byte private key."""
    kek_id: Mapped[str] = mapped_column(String(16))
    """Which key-encryption key sealed it (`key_encryption.kek_id`)."""
    activate_time: Mapped[datetime] = mapped_column(UtcDateTime())
    """From then on it signs (until a newer key's time comes)."""
    create_time: Mapped[datetime] = mapped_column(UtcDateTime())


IDEMPOTENCY_KEYS = idempotency_table(Base.metadata)
"""Responses of mutations by (caller, request_id), for AIP-155 replays."""

SERVICE_SECRETS = service_secrets_table(Base.metadata)
"""Secrets every replica shares: the key of the pairwise subjects and of page tokens."""

OAUTH_CLIENTS = Table(
    "oauth_clients",
    Base.metadata,
    # Identity's copy of what the authorization server needs of each mini-app, kept
    # from the miniapps service's events (event-carried state; see `miniapp_clients`).
    Column("client_id", String(64), primary_key=True),
    Column("mini_app_id", String(36), nullable=False, unique=True),
    # SHA-256 of the client secret, hex, as miniapps stores it.
    Column("secret_sha256", String(64), nullable=False),
    Column("redirect_uris", JSON(), nullable=False),
    # The permissions the published version's manifest requests; empty until published.
    Column("scopes", JSON(), nullable=False),
    # ACTIVE, or SUSPENDED (then no consent, no exchange, no token is active).
    Column("status", String(16), nullable=False),
    # When the suspension or reinstatement now applied committed at miniapps; an older
    # one arriving late is ignored. None until the first of them.
    Column("status_time", UtcDateTime(), nullable=True),
    # When the publication now applied committed at miniapps; an older one arriving
    # late is ignored. None until a version is published.
    Column("publish_time", UtcDateTime(), nullable=True),
    Column("update_time", UtcDateTime(), nullable=False),
)

OAUTH_GRANTS = Table(
    "oauth_grants",
    Base.metadata,
    # A user's consent to one mini-app. A revoked grant stays (its tokens' `gid` must
    # stay dead); consent after revocation makes a new grant.
    Column("grant_id", String(36), primary_key=True),
    Column("user_id", ForeignKey("users.user_id"), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("mini_app_id", String(36), nullable=False),
    Column("scopes", JSON(), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("update_time", UtcDateTime(), nullable=False),
    Column("revoke_time", UtcDateTime(), nullable=True),
    # A user's grants, newest first (ids are UUIDv7).
    Index("ix_oauth_grants_user_id_grant_id", "user_id", "grant_id"),
)

OAUTH_CODES = Table(
    "oauth_codes",
    Base.metadata,
    # One authorization code, stored only as its SHA-256; kept after use so a second
    # use is recognised as reuse (and revokes the grant) until it is pruned.
    Column("code_sha256", String(64), primary_key=True),
    Column("grant_id", ForeignKey("oauth_grants.grant_id"), nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("scopes", JSON(), nullable=False),
    # BASE64URL(SHA-256(code_verifier)) (RFC 7636 S256; plain is never accepted).
    Column("code_challenge", String(128), nullable=False),
    Column("create_time", UtcDateTime(), nullable=False),
    Column("expire_time", UtcDateTime(), nullable=False, index=True),
    Column("use_time", UtcDateTime(), nullable=True),
)
