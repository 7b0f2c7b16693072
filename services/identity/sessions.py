"""Sign-in sessions: short-lived access tokens and rotating, opaque refresh tokens.

A refresh token is 256 random bits, stored only as its SHA-256 digest (its entropy makes
a slow hash pointless). Every use rotates it; presenting a rotated token again means it
was stolen or replayed, so the whole family (every token of that sign-in) is revoked
(RFC 6819 §5.2.2.3). Rotation is a conditional update, so of two concurrent uses of one
token exactly one wins and the other counts as reuse.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.database import Database
from services.identity.access_tokens import AccessTokenIssuer
from services.identity.models import RefreshToken, User, UserFields
from services.runtime.clock import Clock
from services.runtime.errors import Unauthenticated
from services.runtime.ids import new_id

__all__ = ["SessionTokens", "Sessions", "roles_of"]

ACTIVE, ROTATED, REVOKED = "active", "rotated", "revoked"


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """What a sign-in or a refresh hands the client."""

    access_token: str
    access_token_expire_time: datetime
    refresh_token: str
    refresh_token_expire_time: datetime


def roles_of(user: UserFields) -> list[str]:
    """The user's roles as lower-case names, in a stable order."""
    return [role for role in user.roles.split(",") if role]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invalid() -> Unauthenticated:
    return Unauthenticated("INVALID_REFRESH_TOKEN", "the refresh token is not valid")


class Sessions:
    """Starts, refreshes and ends sessions."""

    def __init__(
        self,
        database: Database,
        access_tokens: AccessTokenIssuer,
        refresh_ttl: timedelta,
        clock: Clock,
    ) -> None:
        self._database = database
        self._access_tokens = access_tokens
        self._refresh_ttl = refresh_ttl
        self._clock = clock

    async def start(self, session: AsyncSession, user: User) -> SessionTokens:
        """A new family for `user`, inside the caller's transaction."""
        return await self._issue(session, user, family_id=new_id())

    async def refresh(self, refresh_token: str) -> SessionTokens:
        """Rotate `refresh_token`; reuse of a rotated one revokes its family."""
        now = self._clock.now()
        digest = _digest(refresh_token)
        async with self._database.write() as session:
            row = await session.get(RefreshToken, digest)
            if row is None or row.status == REVOKED or row.expire_time <= now:
                raise _invalid()
            rotated = await session.execute(
                update(RefreshToken)
                .where(RefreshToken.token_hash == digest, RefreshToken.status == ACTIVE)
                .values(status=ROTATED)
                .execution_options(synchronize_session=False)
            )
            if rotated.rowcount == 1:  # type: ignore[attr-defined]
                user = await session.get(User, row.user_id)
                if user is None:
                    raise _invalid()
                return await self._issue(session, user, family_id=row.family_id)
            # Already rotated: stolen or replayed. The revocation must commit, so the
            # error is raised after the transaction.
            await self._revoke_family(session, row.family_id)
        raise Unauthenticated(
            "REFRESH_TOKEN_REUSED",
            "this refresh token was already used; every token of its session is revoked",
        )

    async def end(self, refresh_token: str) -> None:
        """Revoke the token's family; an unknown token is ignored (reveals nothing)."""
        async with self._database.write() as session:
            row = await session.get(RefreshToken, _digest(refresh_token))
            if row is not None:
                await self._revoke_family(session, row.family_id)

    async def _revoke_family(self, session: AsyncSession, family_id: str) -> None:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id)
            .values(status=REVOKED)
            .execution_options(synchronize_session=False)
        )

    async def _issue(self, session: AsyncSession, user: User, family_id: str) -> SessionTokens:
        now = self._clock.now()
        refresh_token = secrets.token_urlsafe(32)
        refresh_expiry = now + self._refresh_ttl
        session.add(
            RefreshToken(
                token_hash=_digest(refresh_token),
                family_id=family_id,
                user_id=user.user_id,
                status=ACTIVE,
                expire_time=refresh_expiry,
                create_time=now,
            )
        )
        access = self._access_tokens.issue(user.user_id, roles_of(user))
        return SessionTokens(access.token, access.expire_time, refresh_token, refresh_expiry)
